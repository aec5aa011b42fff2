"""Case 3: frames lost while Python is busy (a GIL stall), on a JACK dummy server at 48 kHz.

Each recorder (stereo, in a fresh process: ``bench_anchors.py`` worker)
records from PortAudio's JACK device while a separate JACK client (this file
run as ``bench_stall.py _ramp``) feeds every PortAudio input port a ramp: each
frame carries its number on JACK's frame clock (modulo 2**24, exact in
float32). Once the ramp arrives, the worker's main thread holds the GIL for
0.1, 0.5 or 2 s in ONE C call (``sum(range(n))``, calibrated: it never
releases the GIL and scales linearly), then records on for 0.7 s and stops.

``sum(range(n))`` also keeps one of the machine's cores busy, so on a small
machine the audio threads (jackd runs without realtime scheduling here) get
less CPU during the stall. The full run repeats the 2 s stall three times and
adds two controls that separate the effects: the GIL held for 2 s by a C call
that sleeps (``usleep`` through ``ctypes.PyDLL``, which keeps the GIL), so no
core is kept busy; and a baseline where Python sleeps 2 s without the GIL
(what any recorder loses when nothing stalls: scheduling jitter).

Frames lost = the jumps in the ramp of what the recorder holds (its latest
5 s, or everything its consumer received): expected frames (the span of frame
numbers, i.e. elapsed JACK time) minus frames received. The same method for
every recorder, so no recorder needs a counter of its own. Also reported:
the paInputOverflow flags each recorder saw (where it exposes them), and the
cycles jackd logged as not completed ("Process error") during the run.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

RATE = 48000
PERIOD = 256
CHANNELS = 2
#: (hold, seconds, repetitions): "busy" = sum(range(n)); controls: "sleep" = usleep with the GIL held,
#: "none" = time.sleep (the GIL free: Python idle, the baseline).
STALLS = {
    "full": (("busy", 0.1, 1), ("busy", 0.5, 1), ("busy", 2.0, 3), ("sleep", 2.0, 3), ("none", 2.0, 3)),
    "quick": (("busy", 2.0, 1),),
}
#: Latest frames the recorders keep (and the ramp check looks at); rtmixer's ring is the next power of two.
BUFFER_S = 5
PRE_S = 0.3
POST_S = 0.7
RAMP_MODULO = 2**24  # float32 holds every integer below it exactly


# ---- the ramp source (a JACK client in its own process) -------------------------------


def _ramp_main(server: str, target: str) -> int:
    """Body of ``bench_stall.py _ramp``: one output port carrying JACK's frame clock, connected to every
    input port of clients whose name starts with `target`. Runs until stdin closes."""
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
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "_ramp", self.server_name, "PortAudio"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                env={**os.environ, **self.env},
            )
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


# ---- analysis ----------------------------------------------------------------------------


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


def calibrate_stall(seconds: float) -> int:
    """n such that ``sum(range(n))`` holds the GIL for about `seconds` on this machine."""
    probe, took = 1_000_000, 0.0
    while took < 0.25:  # long enough that start-up costs and timer noise vanish
        probe *= 2
        started = time.perf_counter()
        sum(range(probe))
        took = time.perf_counter() - started
    return int(seconds / took * probe)


# ---- the worker (runs in a fresh process per recorder) -----------------------------------


def _holder(spec: dict):
    """A function that holds the GIL in one C call for the stall (or, for the baseline, sleeps without it)."""
    if spec["hold"] == "none":
        return lambda: time.sleep(spec["stall_s"])
    if spec["hold"] == "sleep":
        import ctypes
        import ctypes.util

        libc = ctypes.PyDLL(ctypes.util.find_library("c"))  # PyDLL: the GIL stays held during the call
        microseconds = int(spec["stall_s"] * 1e6)
        return lambda: libc.usleep(microseconds)
    count = calibrate_stall(spec["stall_s"])  # here, in the process that stalls, before recording starts
    return lambda: sum(range(count))


def worker(spec: dict) -> dict:
    from bench_anchors import open_recorder

    hold = _holder(spec)
    rec = open_recorder(spec["recorder"], CHANNELS, RATE, BUFFER_S * RATE, keep=True)
    try:
        rec.start()
        deadline = time.monotonic() + 10
        while not rec.has_signal():
            if time.monotonic() > deadline:
                raise RuntimeError("the ramp did not arrive within 10 s")
            time.sleep(0.01)
        time.sleep(PRE_S)
        t0 = rec.stream_time
        started = time.perf_counter()
        hold()  # ONE C call: holds the GIL throughout
        held = time.perf_counter() - started
        time.sleep(POST_S)
        t1 = rec.stream_time
        rec.stop()
        result = {
            "recorder": spec["recorder"],
            "stall_s": spec["stall_s"],
            "hold": spec["hold"],
            "held_s": held,
            "stream_time_s": t1 - t0,
            "overflow_flags": rec.overflow_flags(),
            "frames_received": rec.frames_received(),
            "ramp": ramp_gaps(rec.channel0()),
            "notes": rec.notes(),
        }
    finally:
        rec.close()
    return result


# ---- the case ----------------------------------------------------------------------------------


def run(mode: str, log=print) -> dict:
    from bench_anchors import RECORDERS, jack_server, run_worker

    stalls = STALLS[mode]
    results = []
    with jack_server(RATE, PERIOD, CHANNELS) as server:
        log_path = server.directory / "jackd.log"
        ramp = RampSource(server.name, server.env, server.directory / "ramp.log")
        try:
            for hold, stall, repetitions in stalls:
                for repetition, name in [(k, n) for k in range(repetitions) for n in RECORDERS]:
                    spec = {"case": "stall", "recorder": name, "stall_s": stall, "hold": hold}
                    for attempt in range(2):
                        died = ramp.ensure_running()
                        if died:
                            log(f"  case 3: the ramp client had exited ({died[-300:]!r}); restarted it")
                        before = _log_lines(log_path)
                        result = run_worker(spec, timeout=60 + 3 * stall, env=server.env)
                        if "the ramp did not arrive" not in result.get("stderr", "") or attempt:
                            break
                        log(f"  case 3: {name}: the ramp did not arrive; restarting the ramp client, once more "
                            f"(its log: {ramp.log_tail()[-300:]!r})")
                        ramp.restart()
                    result.setdefault("recorder", name)
                    result.setdefault("stall_s", stall)
                    result.setdefault("hold", hold)
                    result["repetition"] = repetition
                    result["jack"] = jack_log_summary(_log_lines(log_path)[len(before):])
                    result["jack_cycles_missed"] = result["jack"]["process_errors"]
                    results.append(result)
                    message = f"  case 3: {name:9} {hold} stall {stall:g} s"
                    if "error" in result:
                        message += f": ERROR {result['error']}: {result.get('stderr', '')[-300:]!r}"
                    else:
                        message += (f" (held {result['held_s']:.2f} s): {result['ramp'].get('frames_lost')} frames "
                                    f"lost, overflow flags {result['overflow_flags']}, "
                                    f"{result['jack_cycles_missed']} JACK cycles missed")
                    log(message)
            ramp_restarts = ramp.restarts
        finally:
            ramp.stop()
    result = {
        "rate": RATE,
        "period": PERIOD,
        "channels": CHANNELS,
        "buffer_s": BUFFER_S,
        "ramp_restarts": ramp_restarts,
        "results": results,
    }
    result["target"] = target_of(result)
    return result


def target_of(result: dict) -> dict:
    """The issue's target (audioring, 2 s stall), with the controls and rtmixer's runs beside it."""

    def audioring_runs(hold: str) -> list:
        return [r for r in result["results"]
                if r["recorder"] == "audioring" and r["stall_s"] == 2.0 and r["hold"] == hold and "ramp" in r]

    def rtmixer_lost(hold: str) -> list:
        return [r["ramp"].get("frames_lost") for r in result["results"]
                if r["recorder"] == "rtmixer" and r["stall_s"] == 2.0 and r["hold"] == hold and "ramp" in r]

    busy, control, baseline = audioring_runs("busy"), audioring_runs("sleep"), audioring_runs("none")
    target = {
        "description": "audioring loses 0 frames under a 2 s GIL stall",
        "frames_lost_each_run": [r["ramp"].get("frames_lost") for r in busy],
        "jack_driver_late_each_run": [r["jack"]["driver_late"] for r in busy],
        "rtmixer_frames_lost_each_run": rtmixer_lost("busy"),
        "frames_lost_control_each_run": [r["ramp"].get("frames_lost") for r in control],
        "frames_lost_baseline_each_run": [r["ramp"].get("frames_lost") for r in baseline],
    }
    target["met"] = bool(busy) and all(x == 0 for x in target["frames_lost_each_run"])
    if control:
        target["met_control"] = all(x == 0 for x in target["frames_lost_control_each_run"])
    return target


def _log_lines(log_path: Path) -> list:
    try:
        return log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def jack_log_summary(lines: list) -> dict:
    """What jackd logged about late cycles: graph cycles not completed, and which client was late."""
    late: dict = {}
    for line in lines:
        if "was not finished" in line and "client = " in line:
            client = line.split("client = ", 1)[1].split(" was not finished", 1)[0]
            late[client] = late.get(client, 0) + 1
    return {
        "process_errors": sum("Process error" in line for line in lines),
        "late_clients": late,
        "portaudio_late": sum(v for k, v in late.items() if k.startswith("PortAudio")),
        "driver_late": sum("JackTimedDriver::Process XRun" in line for line in lines),
    }


_HOLD_LABELS = {
    "busy": "busy (`sum(range(n))`)",
    "sleep": "GIL held sleeping (control)",
    "none": "no stall, Python idle (baseline)",
}
_HOLD_SHORT = {"busy": "GIL held, busy", "sleep": "GIL held, sleeping", "none": "no stall (baseline)"}


def _column_order(column: tuple) -> tuple:
    return (("busy", "sleep", "none").index(column[0]), column[1])


def markdown(result: dict) -> list:
    from bench_anchors import LABELS, RECORDERS

    columns = sorted({(r["hold"], r["stall_s"]) for r in result["results"]}, key=_column_order)
    rate = result["rate"]
    lines = [
        f"## 3. Frames lost while Python holds the GIL (JACK dummy, {rate // 1000} kHz, period "
        f"{result['period']}, {result['channels']} ch)",
        "",
        "**Frames lost** (each run, separated by /) = jumps in a frame-clock ramp fed to every recorder: expected "
        "frames (elapsed JACK time) minus frames received. Then: paInputOverflow flags the recorder saw, and JACK "
        "cycles jackd logged as missed during the runs (in parentheses: those it blamed on PortAudio's client, "
        "i.e. the recorder's process thread was late).",
        "",
        "| recorder | " + " | ".join(
            f"{seconds:g} s {_HOLD_LABELS[hold]}" for hold, seconds in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    runs: dict = {}
    for r in result["results"]:
        runs.setdefault((r["recorder"], r["hold"], r["stall_s"]), []).append(r)
    for name in RECORDERS:
        cells = []
        for hold, seconds in columns:
            group = runs.get((name, hold, seconds), [])
            errors = [r["error"] for r in group if "error" in r]
            good = [r for r in group if "error" not in r]
            if not group:
                cells.append("n/a")
                continue
            losses = [r["ramp"].get("frames_lost") for r in good]
            text = " / ".join("?" if x is None else f"{x:,}" for x in losses)
            worst = max((x for x in losses if x is not None), default=None)
            if worst:
                text = f"**{text}** (up to {worst / rate:.3g} s)"
            else:
                text = f"**{text}**"
            if any(r["overflow_flags"] is None for r in good):
                flags = "flags not exposed"
            else:
                total = sum(r["overflow_flags"] for r in good)
                flags = f"{total} flag{'' if total == 1 else 's'}"
            missed = sum(r.get("jack", {}).get("process_errors", 0) for r in good)
            late = sum(r.get("jack", {}).get("portaudio_late", 0) for r in good)
            cells.append(f"{text}; {flags}; missed {missed} ({late})" + (f"; errors: {errors}" if errors else ""))
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    held = "; ".join(
        f"{seconds:g} s {hold}: "
        + ", ".join(f"{r['held_s']:.2f}" for n in RECORDERS for r in runs.get((n, hold, seconds), []) if "held_s" in r)
        for hold, seconds in columns)
    driver_late = "; ".join(
        f"{seconds:g} s {_HOLD_SHORT[hold]}: "
        + str(sum(r.get("jack", {}).get("driver_late", 0) for n in RECORDERS for r in runs.get((n, hold, seconds), [])))
        for hold, seconds in columns)
    lines += [
        "",
        "JACK's dummy driver thread itself woke late (jackd logged `JackTimedDriver::Process XRun`), all recorders' "
        f"runs together: {driver_late}. jackd runs without realtime scheduling here, so while `sum(range(n))` keeps "
        "one of the machine's cores busy, jackd, the ramp client and every recorder's process thread share the "
        "other one.",
        "",
        f"GIL actually held, s, in recorder order (run by run): {held}. \"not exposed\": the tflite-support "
        "reference ignores the status flags in its callback. PortAudio's JACK host API flags paInputOverflow on "
        "every open stream whenever JACK reports an xrun anywhere, so flags can come without a frame lost by that "
        "recorder. A stall longer than rtmixer's ring "
        f"({1 << int(result['buffer_s'] * rate - 1).bit_length():,} frames here) would end its recording for good "
        "(rtmixer drops the recording action when the ring is full).",
        "",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench_anchors import LABELS, RECORDERS

    columns = sorted({(r["hold"], r["stall_s"]) for r in result["results"]}, key=_column_order)
    fig, ax = plt.subplots(figsize=(8, 5.4))
    width = 0.8 / len(RECORDERS)
    for k, name in enumerate(RECORDERS):
        heights = []
        for hold, seconds in columns:
            lost = [r["ramp"].get("frames_lost") or 0 for r in result["results"]
                    if (r["recorder"], r["hold"], r["stall_s"]) == (name, hold, seconds) and "ramp" in r]
            heights.append(max(lost) / result["rate"] if lost else 0.0)
        xs = [i + (k - (len(RECORDERS) - 1) / 2) * width for i in range(len(columns))]
        bars = ax.bar(xs, heights, width, label=LABELS[name].replace("`", ""))
        for bar, height in zip(bars, heights):
            ax.text(bar.get_x() + bar.get_width() / 2, height, f" {height * result['rate']:,.0f}", ha="center",
                    va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(range(len(columns)),
                  [f"{s:g} s {_HOLD_SHORT[h]}" for h, s in columns], fontsize=8)
    ax.set_ylabel("audio lost (s; label: frames, worst run)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # room for the labels
    ax.set_title(f"Case 3: frames lost while the GIL is held (JACK dummy {result['rate'] // 1000} kHz)", fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.text(0.5, 0.005, stamp, ha="center", va="bottom", fontsize=6, color="dimgrey")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "_ramp":
        sys.exit(_ramp_main(sys.argv[2], sys.argv[3]))
    raise SystemExit("usage: bench_stall.py _ramp SERVER TARGET_PREFIX (internal; run benchmarks/run.py)")
