"""Frames lost while Python holds the GIL, on a JACK dummy server at 48 kHz, with a ramp injected.

Each recorder (stereo, a fresh process per run: ``worker.py``) records from
PortAudio's JACK device while a separate JACK client feeds every PortAudio
input port a frame-clock ramp (``harness/ramp.py``). Once the ramp arrives,
the worker's main thread holds the GIL in ONE C call, then records on for
0.7 s and stops. Two stalls, side by side for every recorder:

* **busy**: ``sum(range(n))``, CPU-bound; it never releases the GIL and its
  time grows linearly with n. n is calibrated in the process that stalls,
  from the fastest of three probes of at least 0.25 s each, aiming at 2.6 s
  (as ``tests/test_record_servers.py`` does), so the stall lasts at least
  2 s (quick: 0.65 s and 0.5 s). It also keeps one core busy: on a 2-core
  machine the audio threads share the other.
* **sleeping**: ``usleep`` called through ``ctypes.PyDLL``, which keeps the GIL
  held and the core idle: the GIL alone, without CPU starvation.

The full run adds a **baseline** (Python sleeps without the GIL: what a
recorder loses when nothing stalls). A stall's target is judged only on runs
whose *measured* stall reached 2 s; a shorter busy stall is run again,
recalibrated and aimed longer (at most three attempts; short attempts stay in
the JSON, never judged).

Frames lost = the jumps in the ramp of what the recorder holds (its latest
5 s, or everything its consumer took): the same method for every recorder.
Also reported: paInputOverflow flags the recorder saw, the cycles jackd
logged as missed (and whom it blamed), and whether the threads really ran
with realtime scheduling.

Server variants: jackd ``-r`` (no realtime scheduling, as the test servers
run) and, with ``realtime``, jackd ``-R`` (``JackServer(realtime=True)``);
if the machine refuses realtime scheduling, the report says so and has no
such rows.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from harness.context import RunContext
from harness.gil import AIM_S, MAX_ATTEMPTS, REQUIRED_S, holder, until_stall_reached
from harness.ramp import RampSource, ramp_gaps
from harness.recorders import RECORDERS, installed
from harness.servers import SERVER_KINDS, JackLog, RealtimeUnavailable, jack_server, scheduling
from harness.workers import run_worker
from reports.stall import TITLE, chart, markdown, targets

__all__ = ["TITLE", "chart", "markdown", "run", "targets", "worker"]

RATE = 48000
PERIOD = 256
CHANNELS = 2
BUFFER_S = 5
PRE_S = 0.3
POST_S = 0.7
#: realtime -> ((hold, runs per recorder, recorders), ...). Quick: a smoke run; busy for audioring and the reference,
#: sleeping for audioring.
_ALL = tuple(RECORDERS)
PLAN = {
    "full": {False: (("busy", 2, _ALL), ("sleep", 2, _ALL), ("none", 1, _ALL)),
             True: (("busy", 2, _ALL), ("sleep", 1, _ALL))},
    "quick": {False: (("busy", 1, ("audioring", "tflite")), ("sleep", 1, ("audioring",))),
              True: (("busy", 1, ("audioring",)),)},
}


# ---- in the worker process ----------------------------------------------------------------


def worker(spec: dict) -> dict:
    import sounddevice as sd

    from harness.recorders import open_recorder
    from harness.servers import jack_device

    hold, calibration = holder(spec["hold"], spec["aim_s"])
    rec = open_recorder(spec["recorder"], jack_device(sd), CHANNELS, RATE, BUFFER_S * RATE, keep=True)
    try:
        rec.start()
        deadline = time.monotonic() + 10
        while not rec.has_signal():
            if time.monotonic() > deadline:
                raise RuntimeError("the ramp did not arrive within 10 s")
            time.sleep(0.01)
        time.sleep(PRE_S)
        threads = scheduling(os.getpid())
        t0 = rec.stream_time
        started = time.perf_counter()
        hold()  # ONE C call: holds the GIL throughout
        held = time.perf_counter() - started
        time.sleep(POST_S)
        t1 = rec.stream_time
        rec.stop()
        return {
            "held_s": held,
            "calibration": calibration,
            "stream_time_s": t1 - t0,
            "overflow_flags": rec.overflow_flags(),
            "frames_received": rec.frames_received(),
            "ramp": ramp_gaps(rec.channel0()),
            "realtime_threads": threads["realtime_threads"],
            "notes": rec.notes(),
        }
    finally:
        rec.close()


# ---- in the harness -------------------------------------------------------------------------


def _one_run(server, ramp: RampSource, name: str, hold: str, ctx: RunContext) -> dict:
    """One judged run of `name` with stall `hold`; a busy stall that fell short is redone, aimed longer."""

    def attempt(aim: float, number: int) -> Optional[dict]:
        spec = {"case": "stall", "recorder": name, "hold": hold, "aim_s": aim}
        died = ramp.ensure_running()
        if died:
            ctx.log(f"  stall: the ramp client had exited ({died[-300:]!r}); restarted it")
        log = JackLog(server)
        result = run_worker(spec, timeout=60 + 3 * aim, env=server.env)
        if "the ramp did not arrive" in result.get("stderr", "") and number < MAX_ATTEMPTS:
            ctx.log(f"  stall: {name}: the ramp did not arrive; restarting the ramp client "
                    f"(its log: {ramp.log_tail()[-300:]!r})")
            ramp.restart()
            return None
        result.update(recorder=name, hold=hold, aim_s=aim, attempt=number, jack=log.since())
        return result

    def short(result: dict) -> None:
        ctx.log(f"  stall: {name} {hold}: held only {result['held_s']:.2f} s "
                f"(< {REQUIRED_S[ctx.mode]:g} s): not judged, recalibrating and aiming longer")

    return until_stall_reached(attempt, hold, ctx.mode, short)


def _variant(realtime: bool, ctx: RunContext) -> dict:
    variant: dict = {"realtime": realtime, "server": SERVER_KINDS[realtime], "runs": []}
    try:
        with jack_server(RATE, PERIOD, CHANNELS, realtime=realtime) as server:
            variant["jackd_scheduling"] = scheduling(server.pid)
            with RampSource(server.name, server.env, Path(server.directory) / "ramp.log") as ramp:
                for hold, runs, recorders in PLAN[ctx.mode][realtime]:
                    for repetition in range(runs):
                        for name in installed(recorders):
                            result = _one_run(server, ramp, name, hold, ctx)
                            result["repetition"] = repetition
                            variant["runs"].append(result)
                            ctx.log(f"  stall [{'-R' if realtime else '-r'}] {name:9} {hold:5}: " + (
                                f"ERROR {result['error']}: {result.get('stderr', '')[-300:]!r}" if "error" in result
                                else f"held {result['held_s']:.2f} s, {result['ramp'].get('frames_lost')} frames lost,"
                                     f" flags {result['overflow_flags']}, {result['jack']['process_errors']} JACK "
                                     f"cycles missed"))
                variant["ramp_restarts"] = ramp.restarts
    except RealtimeUnavailable as error:
        variant["refused"] = str(error)
        ctx.log(f"  stall: realtime jackd refused here: {error}")
    return variant


def run(ctx: RunContext) -> dict:
    variants = [_variant(False, ctx)]
    if ctx.realtime:
        variants.append(_variant(True, ctx))
    return {"rate": RATE, "period": PERIOD, "channels": CHANNELS, "buffer_s": BUFFER_S, "aim_s": AIM_S[ctx.mode],
            "required_s": REQUIRED_S[ctx.mode], "variants": variants}


# ---- judging and reporting -------------------------------------------------------------------
