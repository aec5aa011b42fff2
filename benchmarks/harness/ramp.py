"""A frame-clock ramp fed into every recorder through JACK, and the check of what a recorder kept.

Each frame carries its number on JACK's frame clock (modulo 2**24, exact in
float32), so every lost frame shows as a jump in the recorded ramp, whatever
the recorder: no recorder needs a counter of its own. The ramp comes from a
separate JACK client process (``worker.py ramp``), so a recorder that stalls
cannot disturb it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from harness.workers import child_command

RAMP_MODULO = 2**24  # float32 holds every integer below it exactly


def ramp_client_main(server: str, target: str) -> int:
    """Body of ``worker.py ramp``: one output port carrying JACK's frame clock, connected to every input
    port of clients whose name starts with `target`. Runs until stdin closes."""
    import jack  # JACK-Client

    client = jack.Client("audioring-ramp", servername=server, no_start_server=True)
    out = client.outports.register("ramp")
    offsets = np.arange(8192, dtype=np.float64)

    @client.set_process_callback
    def process(frames):
        start = client.last_frame_time
        np.mod(offsets[:frames] + start, RAMP_MODULO, out=out.get_array()[:frames], casting="unsafe")

    client.activate()
    print("ready", flush=True)
    connected: set = set()
    while not select.select([sys.stdin], [], [], 0.02)[0]:
        try:
            for port in client.get_ports(is_audio=True, is_input=True):
                if port.name.split(":", 1)[0].startswith(target) and port.name not in connected:
                    client.connect(out, port.name)
                    connected.add(port.name)
            connected &= {p.name for p in client.get_ports(is_input=True)}
        except jack.JackError:
            continue  # a port went away while we looked (a recorder closed its stream): look again
    client.deactivate()
    client.close()
    return 0


class RampSource:
    """The ramp client process for the JACK server `server_name`; restarted if it dies."""

    def __init__(self, server_name: str, env: dict, log_path: Path) -> None:
        self.server_name = server_name
        self.env = env
        self.log_path = log_path
        self.restarts = 0
        self.proc: Optional[subprocess.Popen] = None
        self._start()

    def _start(self) -> None:
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(child_command("ramp", self.server_name, "PortAudio"),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
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
