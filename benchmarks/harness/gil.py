"""Holding the GIL in one C call, for as long as a case asks, and redoing a stall that fell short.

Two ways to hold it (and a baseline that does not):

* **busy**: ``sum(range(n))``, CPU-bound; it never releases the GIL and its
  time grows linearly with n. n is calibrated in the process that stalls,
  from the fastest of three probes of at least 0.25 s each (as
  ``tests/test_record_servers.py`` does), so the stall lasts at least what
  was aimed at. It also keeps one core busy.
* **sleeping**: ``usleep`` called through ``ctypes.PyDLL``, which keeps the GIL
  held and the core idle: the GIL alone, without CPU starvation.
* **none**: ``time.sleep``, the GIL free (what a recorder loses when nothing
  stalls).

A stall counts for a target only if its *measured* length reached
`REQUIRED_S` (of the run's mode); `until_stall_reached` runs a busy stall that
fell short again, recalibrated and aimed longer (at most `MAX_ATTEMPTS`
attempts; the short ones are kept, never judged). The quick run's stalls are
short: it checks that the cases run, its numbers are not the published ones.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

#: The stall aimed at, and the stall a judged run must have reached, per mode ("full", "quick").
AIM_S = {"full": 2.6, "quick": 0.65}
REQUIRED_S = {"full": 2.0, "quick": 0.5}
MAX_ATTEMPTS = 3

HOLDS = {
    "busy": "GIL held, busy (`sum(range(n))`)",
    "sleep": "GIL held, sleeping (`usleep`)",
    "none": "no stall, GIL free (baseline)",
}


def calibrate_busy(aim_s: float) -> tuple:
    """n such that ``sum(range(n))`` holds the GIL at least about `aim_s`; never from a single probe:
    the fastest of three probes of >= 0.25 s is the machine's true speed, so the stall is not shorter."""
    probe, took = 1_000_000, 0.0
    while took < 0.25:  # long enough that start-up costs and timer noise vanish
        probe *= 2
        started = time.perf_counter()
        sum(range(probe))
        took = time.perf_counter() - started
    probes = [took]
    for _ in range(2):
        started = time.perf_counter()
        sum(range(probe))
        probes.append(time.perf_counter() - started)
    return int(aim_s / min(probes) * probe), {"probe_n": probe, "probe_s": probes}


def holder(hold: str, aim_s: float) -> tuple:
    """(function, calibration): a function that holds the GIL in ONE C call (or, for "none", sleeps without it).

    Call this in the process that stalls, before recording starts (a busy hold calibrates here).
    """
    if hold == "none":
        return (lambda: time.sleep(aim_s)), {}
    if hold == "sleep":
        import ctypes
        import ctypes.util

        libc = ctypes.PyDLL(ctypes.util.find_library("c"))  # PyDLL: the GIL stays held during the call
        microseconds = int(aim_s * 1e6)
        return (lambda: libc.usleep(microseconds)), {}
    count, calibration = calibrate_busy(aim_s)
    return (lambda: sum(range(count))), calibration


def until_stall_reached(attempt: Callable[[float, int], Optional[dict]], hold: str, mode: str,
                        short: Callable[[dict], None] = lambda result: None) -> dict:
    """Run ``attempt(aim_s, number)`` until its measured stall (``result["held_s"]``) reached ``REQUIRED_S[mode]``.

    `attempt` returns the run's result (with ``held_s``, or ``error``), or None to be called again as is (a
    run that could not start; never on the last attempt). A stall that fell short is redone aimed longer, at
    most `MAX_ATTEMPTS` attempts in all; `short(result)` is told of each. Returns the last result, with
    ``stall_reached`` (not for errors or the "none" baseline) and ``short_attempts`` (the unjudged ones).
    """
    aim, required, shorter = AIM_S[mode], REQUIRED_S[mode], []
    result: dict = {}
    for number in range(1, MAX_ATTEMPTS + 1):
        got = attempt(aim, number)
        if got is None and number < MAX_ATTEMPTS:
            continue
        result = got if got is not None else {"error": "the run could not start"}
        if "error" in result or hold == "none":
            break
        result["stall_reached"] = result["held_s"] >= required
        if result["stall_reached"] or number == MAX_ATTEMPTS:
            break
        shorter.append(result)
        short(result)
        aim = aim * max(1.2, required / max(result["held_s"], 0.1) * 1.15)
    result["short_attempts"] = shorter
    return result
