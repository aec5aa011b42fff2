"""Sample-rate conversion: audioring's native converter against the usual Python recipes, side by side.

Three conversions: 48 → 16 kHz mono, 44.1 → 16 kHz stereo, 192 → 48 kHz × 32
channels. Four measurements:

**A. CPU per second of audio on JACK** (whole process, ``time.process_time``
of all its threads over a fixed wall time, as in the capacity case; 100% =
one core). A JACK dummy server runs at the conversion's input rate (period
256 frames, 1024 at 192 kHz) with a tone per channel injected
(``JackServer.inject_tones``, a separate process), and each recorder records
the output rate from PortAudio's JACK device in a fresh process
(``worker.py``):

* audioring's ``AudioRecord(ch, out_rate, out_rate, device=<JACK>)``: the
  device cannot do ``out_rate``, so it opens at the server's rate and a
  native thread converts (libsoxr, quality "high");
* the recipe: a sounddevice ``InputStream`` at the device's rate whose Python
  callback feeds python-soxr's ``ResampleStream(..., quality="HQ")`` and puts
  the output on a queue a consumer thread takes it from
  (``harness/recorders/sd_soxr_recorder.py``);
* sounddevice's queue recipe with ``scipy.signal.resample_poly`` per block in
  the consumer (``harness/recorders/sd_scipy_recorder.py``);
* for scale (full run), audioring at the device's rate, no conversion: what
  capture alone costs.

Frames lost: frames due by JACK's clock at the device's rate minus the device
frames that reached the recorder (to within one period), plus what audioring's
converter itself counted as lost (``stats.device_frames_lost``), in output
frames; output frames delivered per second of audio are shown next to it.

**B. The conversion alone** (no device, one fresh process): the same kind of
signal (a tone per channel and a little noise) converted by audioring's
converter (``_core.Converter``, exactly as ``AudioRecord`` builds it, on a
capture ring filled beforehand, timed from ``start()`` to the end of
``stop()``, which converts everything and flushes), python-soxr's one-shot
``soxr.resample``, its ``ResampleStream`` fed period-sized chunks, and
``resample_poly`` per period-sized block and in one go: CPU and wall seconds
per second of audio, medians over repetitions taking turns. audioring's
converter against the one-shot ``soxr.resample`` is the "within 1.2×" target:
the same samples, the same libsoxr recipe (HQ).

**C. Block-edge error**: ``resample_poly`` block by block against one-shot
``resample_poly`` of the same input (max abs difference, SNR, and how many
frames each makes: per-block rounding makes a block-wise stream longer);
python-soxr's chunked ``ResampleStream`` against its one-shot ``resample`` (0:
the scale), and audioring's converter against python-soxr's one-shot.

**D. Frames lost in a 2 s GIL stall with conversion on** (48 → 16 kHz mono,
JACK, tone injected): the stall case's busy hold (``harness/gil.py``: one C
call, calibrated in the worker, judged only if the measured stall reached
2 s, redone aimed longer if short; quick: 0.5 s). Frames lost as in A over a
window from just before the stall to 0.7 s after it; also the overflow flags
and audioring's converter losses.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

from harness.context import RunContext
from harness.formatting import fmt_runs
from harness.gil import AIM_S, REQUIRED_S, holder, until_stall_reached
from harness.recorders import LABELS, installed, missing
from harness.servers import SERVER_KINDS, JackLog, RealtimeUnavailable, jack_server, realtime_text, scheduling
from harness.workers import run_worker

TITLE = "Sample-rate conversion: CPU per second of audio, block-edge error, frames lost in a GIL stall"


@dataclass(frozen=True)
class Conversion:
    channels: int
    in_rate: int
    out_rate: int


CONVERSIONS = (Conversion(1, 48000, 16000), Conversion(2, 44100, 16000), Conversion(32, 192000, 48000))
#: What audioring's converter reads per step (``ConverterConfig::chunk``): how far its output may lag.
CONVERTER_CHUNK = 1024
WARMUP_S = 0.5
BUFFER_S = 1
SIGNAL_WAIT_S = 10.0

#: Rows of the JACK table: key -> (recorder, whether it records the output rate: else the device's, no conversion).
ROWS = {
    "audioring": ("audioring", True),
    "sd_soxr": ("sd_soxr", True),
    "sd_scipy": ("sd_scipy", True),
    "capture_only": ("audioring", False),
}
ROW_LABELS = {
    "audioring": "audioring `AudioRecord`, native conversion",
    "sd_soxr": LABELS["sd_soxr"],
    "sd_scipy": LABELS["sd_scipy"],
    "capture_only": "audioring `AudioRecord` at the device's rate, no conversion (capture alone, for scale)",
}

#: The offline methods of part B, in table order.
METHODS = {
    "converter": "audioring's converter (native thread, libsoxr \"high\" = HQ)",
    "soxr_oneshot": "python-soxr one-shot `soxr.resample(..., quality=\"HQ\")`",
    "soxr_stream": "python-soxr `ResampleStream` (HQ), period-sized chunks",
    "poly_blocks": "scipy `resample_poly`, period-sized blocks",
    "poly_oneshot": "scipy `resample_poly`, one-shot",
}
_METHOD_NEEDS = {"soxr_oneshot": "soxr", "soxr_stream": "soxr", "poly_blocks": "scipy", "poly_oneshot": "scipy"}


@dataclass(frozen=True)
class Plan:
    seconds: float  # per JACK run
    runs: dict  # row -> runs per conversion
    conversions: tuple  # indices into CONVERSIONS of those run on JACK (all of them run alone, part B)
    offline_s: tuple  # seconds of audio converted alone, per conversion
    offline_reps: int
    stall: dict  # realtime -> ((recorder, runs), ...)


PLAN = {
    "full": Plan(4.0, {"audioring": 2, "sd_soxr": 1, "sd_scipy": 1, "capture_only": 1}, (0, 1, 2), (60.0, 30.0, 5.0),
                 9, {False: (("audioring", 2), ("sd_soxr", 1)), True: (("audioring", 2), ("sd_soxr", 1))}),
    # A smoke run: both targets' conversions, the scipy recipe on the cheapest, audioring's stall on jackd -r only.
    "quick": Plan(1.0, {"audioring": 1, "sd_soxr": 1, "sd_scipy": 1}, (0, 2), (2.0, 2.0, 0.25), 3,
                  {False: (("audioring", 1),)}),
}
#: Quick runs the scipy recipe on JACK only for this conversion (its cost per block is in part B for all).
QUICK_SCIPY = 0
#: The stall's conversion (48 -> 16 kHz mono) and its window around the stall.
STALL = CONVERSIONS[0]
PRE_S = 0.3
POST_S = 0.7

#: Targets, judged from the numbers of each run.
TARGET_MONO_CPU = 0.001  # 48 -> 16 kHz mono: <= 0.1% of one core
TARGET_32_CPU = 0.05  # 32 ch 192 -> 48 kHz: <= 5% of one core
TARGET_RATIO = 1.2  # the converter alone, against python-soxr's one-shot resample of the same samples
#: JACK runs shorter than this are shown but not judged (the quick run's are).
TARGET_MIN_S = 4.0


def period_for(rate: int) -> int:
    """JACK period at `rate`: 256 frames up to 48 kHz, scaled above (1024 at 192 kHz)."""
    return 256 * max(1, rate // 48000)


def tones(channels: int) -> list:
    """A distinct integer-Hz tone per channel (below 4 kHz: under every output rate's Nyquist)."""
    return [440 + 110 * i for i in range(channels)]


def conversion_text(c: Conversion) -> str:
    return f"{c.in_rate / 1000:g} → {c.out_rate / 1000:g} kHz × {c.channels} ch"


# ---- in the worker processes ----------------------------------------------------------------


def worker(spec: dict) -> dict:
    return {"cpu": _cpu_worker, "stall": _stall_worker, "offline": _offline_worker}[spec["part"]](spec)


def _open(spec: dict, rate: int, buffer_frames: int):
    import sounddevice as sd

    from harness.recorders import open_recorder
    from harness.servers import jack_device

    return open_recorder(spec["recorder"], jack_device(sd), spec["channels"], rate, buffer_frames)


def _wait_for_signal(rec) -> float:
    """Seconds until the injected tones reached the recording (raises after SIGNAL_WAIT_S)."""
    started = time.monotonic()
    while not rec.has_signal():
        if time.monotonic() - started > SIGNAL_WAIT_S:
            raise RuntimeError(f"the injected tones did not arrive within {SIGNAL_WAIT_S:g} s")
        time.sleep(0.01)
    return time.monotonic() - started


def _counters(rec) -> dict:
    conversion = rec.conversion()
    frames = rec.frames_received()
    return {"time": rec.stream_time, "frames": frames, "conversion": conversion,
            "device_frames": conversion["device_frames"] if conversion else frames}


def delivery(before: dict, after: dict, rate: int, device_rate: int, period: int) -> dict:
    """Frames due by the clock against frames that reached the recorder, between two `_counters`.

    Lost (in output frames): device frames due minus device frames received, when at least one period (the
    counters move a period at a time), plus the device frames audioring's converter itself lost; both times
    rate / device_rate. Output frames delivered against due are kept as they are (the converters' output
    lags a little, and block-wise resampling rounds every block up).
    """
    seconds = after["time"] - before["time"]
    ratio = rate / device_rate
    device_short = round(seconds * device_rate) - (after["device_frames"] - before["device_frames"])
    converter_lost = 0
    if after["conversion"] and "device_frames_lost" in after["conversion"]:
        converter_lost = after["conversion"]["device_frames_lost"] - before["conversion"]["device_frames_lost"]
    lost_device = (device_short if device_short >= period else 0) + converter_lost
    delivered = after["frames"] - before["frames"]
    return {"audio_s": seconds, "device_frames_short_raw": device_short, "converter_device_frames_lost": converter_lost,
            "frames_lost": round(lost_device * ratio), "frames_due": round(seconds * rate),
            "frames_delivered": delivered}


def _cpu_worker(spec: dict) -> dict:
    rate, seconds = spec["rate"], spec["seconds"]
    rec = _open(spec, rate, BUFFER_S * rate)
    result: dict = {}
    try:
        rec.start()
        result["signal_after_s"] = _wait_for_signal(rec)
        time.sleep(WARMUP_S)
        threads = scheduling(os.getpid())
        before, cpu0, wall0 = _counters(rec), time.process_time(), time.perf_counter()
        time.sleep(seconds)
        after, cpu1, wall1 = _counters(rec), time.process_time(), time.perf_counter()
        try:
            rec.stop()
        except Exception as error:  # noqa: BLE001 - an overloaded stream may fail to stop in time: report it
            result["stop_error"] = f"{type(error).__name__}: {error}"
        moved = delivery(before, after, rate, spec["device_rate"], spec["period"])
        audio_s = moved["audio_s"]
        result.update(moved, wall_s=wall1 - wall0, cpu_s=cpu1 - cpu0,
                      cpu_per_audio_s=(cpu1 - cpu0) / audio_s if audio_s > 0 else None,
                      overflow_flags=rec.overflow_flags(), conversion=after["conversion"],
                      realtime_threads=threads["realtime_threads"], notes=rec.notes())
    finally:
        rec.close()
    return result


def _stall_worker(spec: dict) -> dict:
    hold, calibration = holder("busy", spec["aim_s"])  # calibrated here, in the process that stalls
    rate = spec["rate"]
    rec = _open(spec, rate, BUFFER_S * rate)
    try:
        rec.start()
        _wait_for_signal(rec)
        time.sleep(PRE_S)
        threads = scheduling(os.getpid())
        before = _counters(rec)
        started = time.perf_counter()
        hold()  # ONE C call: holds the GIL throughout
        held = time.perf_counter() - started
        time.sleep(POST_S)
        after = _counters(rec)
        rec.stop()
        return {"held_s": held, "calibration": calibration,
                **delivery(before, after, rate, spec["device_rate"], spec["period"]),
                "overflow_flags": rec.overflow_flags(), "conversion": after["conversion"],
                "realtime_threads": threads["realtime_threads"], "notes": rec.notes()}
    finally:
        rec.close()


def test_signal(channels: int, rate: int, seconds: float):
    """float32 (frames, channels): each channel's tone (as injected on JACK) at 0.3, plus noise at 0.01 rms."""
    import numpy as np

    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * t[:, None] * np.asarray(tones(channels), dtype=np.float64)[None, :])
    x += 0.01 * np.random.default_rng(1).standard_normal(x.shape)
    return np.ascontiguousarray(x, dtype=np.float32)


def _converter(c: Conversion, x):
    """A runner of audioring's converter over `x`, as AudioRecord builds it: () -> (cpu_s, wall_s, output)."""
    from audioring import Ring, _core

    def run() -> tuple:
        capture_ring = Ring(c.channels, len(x) + 4096, "float32", mirrored=False)
        capture = _core.Capture(capture_ring._core)
        output = Ring(c.channels, math.ceil(len(x) * c.out_rate / c.in_rate) + 4096, "float32", mirrored=False)
        converter = _core.Converter(capture, output._core, float(c.in_rate), float(c.out_rate), c.channels,
                                    list(range(c.channels)), _core.SampleFormat.float32, _core.Quality.high)
        converter.reset()
        for start in range(0, len(x), CONVERTER_CHUNK):  # the device's blocks, into the capture ring (untimed)
            block = x[start:start + CONVERTER_CHUNK]
            capture.write_block(block, len(block), 0.0, 0.0, 0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        converter.start()
        converter.stop()  # converts everything the capture ring holds, flushes libsoxr, joins the thread
        cpu1, wall1 = time.process_time(), time.perf_counter()
        stats = converter.stats()
        return cpu1 - cpu0, wall1 - wall0, output.latest(stats["frames"], copy=True)

    return run


def _timed(function) -> tuple:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = function()
    return time.process_time() - cpu0, time.perf_counter() - wall0, out


def _runners(c: Conversion, x, available: set) -> dict:
    """method -> () -> (cpu_s, wall_s, output), for the methods whose packages are installed."""
    import numpy as np

    period = period_for(c.in_rate)
    runners = {"converter": _converter(c, x)}
    if "soxr" in available:
        import soxr

        def soxr_stream():
            stream = soxr.ResampleStream(c.in_rate, c.out_rate, c.channels, dtype="float32", quality="HQ")
            return np.concatenate([stream.resample_chunk(x[i:i + period], last=i + period >= len(x))
                                   for i in range(0, len(x), period)])

        runners["soxr_oneshot"] = lambda: _timed(lambda: soxr.resample(x, c.in_rate, c.out_rate, quality="HQ"))
        runners["soxr_stream"] = lambda: _timed(soxr_stream)
    if "scipy" in available:
        from scipy.signal import resample_poly

        ratio = Fraction(c.out_rate, c.in_rate)
        runners["poly_blocks"] = lambda: _timed(lambda: poly_blockwise(c, x, period))
        runners["poly_oneshot"] = lambda: _timed(
            lambda: resample_poly(x, ratio.numerator, ratio.denominator, axis=0).astype(np.float32, copy=False))
    return runners


def edge_block(c: Conversion) -> int:
    """The multiple of the decimation nearest the JACK period: blocks that resample into whole output frames."""
    down = Fraction(c.out_rate, c.in_rate).denominator
    return down * max(1, round(period_for(c.in_rate) / down))


def poly_blockwise(c: Conversion, x, block: int):
    """`x` resampled by ``resample_poly`` `block` frames at a time, as the recipe's consumer does, concatenated."""
    import numpy as np
    from scipy.signal import resample_poly

    ratio = Fraction(c.out_rate, c.in_rate)
    return np.concatenate([resample_poly(x[i:i + block], ratio.numerator, ratio.denominator, axis=0).astype(
        np.float32, copy=False) for i in range(0, len(x), block)])


def compare(output, reference) -> dict:
    """Max abs difference and SNR (dB) of `output` against `reference` over their common length, and both lengths."""
    import numpy as np

    n = min(len(output), len(reference))
    a, b = np.asarray(output[:n], dtype=np.float64), np.asarray(reference[:n], dtype=np.float64)
    error = float(np.sum((a - b) ** 2))
    return {"max_abs": float(np.max(np.abs(a - b))) if n else None,
            "snr_db": None if error == 0 else 10 * math.log10(float(np.sum(b ** 2)) / error),
            "identical": bool(error == 0 and len(output) == len(reference)),
            "frames": len(output), "reference_frames": len(reference)}


def _offline_worker(spec: dict) -> dict:
    import importlib.util

    from audioring import _core

    available = {m for m in ("soxr", "scipy") if importlib.util.find_spec(m) is not None}
    results = []
    for c_dict, seconds in zip(spec["conversions"], spec["offline_s"]):
        c = Conversion(**c_dict)
        x = test_signal(c.channels, c.in_rate, seconds)
        runners = _runners(c, x, available)
        names = list(runners)
        cpu: dict = {n: [] for n in names}
        wall: dict = {n: [] for n in names}
        outputs: dict = {}
        for rep in range(spec["reps"]):
            for k in range(len(names)):
                name = names[(k + rep) % len(names)]  # a different one goes first each round
                took_cpu, took_wall, outputs[name] = runners[name]()
                cpu[name].append(took_cpu / seconds)
                wall[name].append(took_wall / seconds)
        result = {
            **asdict(c), "seconds": seconds, "period": period_for(c.in_rate), "samples": x.size,
            "methods": {n: {"cpu_per_audio_s": statistics.median(cpu[n]), "wall_per_audio_s": statistics.median(
                wall[n]), "cpu_runs": cpu[n], "wall_runs": wall[n]} for n in names},
            "errors": {},
        }
        if "poly_blocks" in outputs:
            result["errors"]["poly_blocks_vs_oneshot"] = compare(outputs["poly_blocks"], outputs["poly_oneshot"])
            # The edges alone: blocks of a multiple of the decimation make whole output frames, so no drift.
            block = edge_block(c)
            result["edge_block"] = block
            result["errors"]["poly_edges_vs_oneshot"] = compare(poly_blockwise(c, x, block), outputs["poly_oneshot"])
        if "soxr_stream" in outputs:
            result["errors"]["soxr_stream_vs_oneshot"] = compare(outputs["soxr_stream"], outputs["soxr_oneshot"])
            result["errors"]["converter_vs_soxr_oneshot"] = compare(outputs["converter"], outputs["soxr_oneshot"])
        results.append(result)
    libsoxr = {"audioring": _core.soxr_version()}
    if "soxr" in available:
        import soxr

        libsoxr["python-soxr"] = getattr(soxr, "__libsoxr_version__", None)
    return {"conversions": results, "libsoxr": libsoxr, "available": sorted(available)}


# ---- in the harness -------------------------------------------------------------------------


def _cpu_runs(served: Served, c: Conversion, plan: Plan, ctx: RunContext) -> list:
    period = period_for(c.in_rate)
    runs = []
    for row, count in plan.runs.items():
        recorder, converts = ROWS[row]
        if not installed((recorder,)) or (row == "sd_scipy" and ctx.quick and c != CONVERSIONS[QUICK_SCIPY]):
            continue
        rate = c.out_rate if converts else c.in_rate
        for repetition in range(count):
            log = JackLog(served.server)
            spec = {"case": "convert", "part": "cpu", "recorder": recorder, "channels": c.channels, "rate": rate,
                    "device_rate": c.in_rate, "seconds": plan.seconds, "period": period}
            result = served.run(spec, plan.seconds * 3 + 60, ctx)
            result.update(row=row, recorder=recorder, **asdict(c), rate=rate, seconds=plan.seconds, period=period,
                          repetition=repetition, jack=log.since())
            runs.append(result)
            ctx.log(f"  convert: {row:12} {conversion_text(c)}: " + (
                f"ERROR {result['error']}: {result.get('stderr', '')[-300:]!r}" if "error" in result else
                f"CPU {100 * result['cpu_per_audio_s']:.3g}% of a core, flags {result['overflow_flags']}, lost "
                f"{result['frames_lost']}, JACK missed {result['jack']['process_errors']}"))
    return runs


def _stall_run(served: Served, recorder: str, ctx: RunContext) -> dict:
    period = period_for(STALL.in_rate)

    def attempt(aim: float, number: int) -> dict:
        spec = {"case": "convert", "part": "stall", "recorder": recorder, "channels": STALL.channels,
                "rate": STALL.out_rate, "device_rate": STALL.in_rate, "period": period, "aim_s": aim}
        log = JackLog(served.server)
        result = served.run(spec, 60 + 3 * aim, ctx)
        result.update(recorder=recorder, hold="busy", aim_s=aim, attempt=number, jack=log.since())
        return result

    def short(result: dict) -> None:
        ctx.log(f"  convert: stall {recorder}: held only {result['held_s']:.2f} s "
                f"(< {REQUIRED_S[ctx.mode]:g} s): not judged, recalibrating and aiming longer")

    return until_stall_reached(attempt, "busy", ctx.mode, short)


def _stall_variant(served: Served, realtime: bool, plan: Plan, ctx: RunContext) -> dict:
    variant: dict = {"realtime": realtime, "server": SERVER_KINDS[realtime], "runs": [],
                     "jackd_scheduling": scheduling(served.server.pid)}
    for recorder, count in plan.stall[realtime]:
        if not installed((recorder,)):
            continue
        for repetition in range(count):
            result = _stall_run(served, recorder, ctx)
            result["repetition"] = repetition
            variant["runs"].append(result)
            ctx.log(f"  convert: stall [{'-R' if realtime else '-r'}] {recorder:9}: " + (
                f"ERROR {result['error']}: {result.get('stderr', '')[-300:]!r}" if "error" in result
                else f"held {result['held_s']:.2f} s, {result['frames_lost']} frames lost, flags "
                     f"{result['overflow_flags']}, {result['jack']['process_errors']} JACK cycles missed"))
    return variant


class Served:
    """A JACK dummy server at a conversion's input rate, and the tone client feeding every recorder on it."""

    def __init__(self, server, channels: int) -> None:
        self.server = server
        self.freqs = tones(channels)
        self.injector = server.inject_tones(self.freqs)
        self.restarts = 0

    def run(self, spec: dict, timeout: float, ctx: RunContext) -> dict:
        """`spec` in a fresh worker; run once more, with a new tone client, if the tones did not arrive."""
        result = run_worker(spec, timeout=timeout, env=self.server.env)
        if "the injected tones did not arrive" in result.get("stderr", ""):
            ctx.log("  convert: the injected tones did not arrive; restarting the tone client and running again")
            self.injector.stop()
            self.injector = self.server.inject_tones(self.freqs)
            self.restarts += 1
            result = run_worker(spec, timeout=timeout, env=self.server.env)
            result["tones_restarted"] = True
        return result


@contextlib.contextmanager
def _served(c: Conversion, realtime: bool = False) -> Iterator[Served]:
    with jack_server(c.in_rate, period_for(c.in_rate), c.channels, realtime=realtime) as server:
        served = Served(server, c.channels)
        try:
            yield served
        finally:
            served.injector.stop()


def run(ctx: RunContext) -> dict:
    plan = PLAN[ctx.mode]
    rows = [row for row in plan.runs if installed((ROWS[row][0],))]
    skipped = {row: missing(ROWS[row][0]) for row in plan.runs if row not in rows}
    runs, variants, restarts = [], [], 0
    for index in sorted(set(plan.conversions) | {CONVERSIONS.index(STALL)}):
        c = CONVERSIONS[index]
        with _served(c) as served:
            if index in plan.conversions:
                runs += _cpu_runs(served, c, plan, ctx)
            if c == STALL:
                variants.append(_stall_variant(served, False, plan, ctx))
            restarts += served.restarts
    if True in plan.stall and ctx.realtime:
        try:
            with _served(STALL, realtime=True) as served:
                variants.append(_stall_variant(served, True, plan, ctx))
                restarts += served.restarts
        except RealtimeUnavailable as error:
            variants.append({"realtime": True, "server": SERVER_KINDS[True], "refused": str(error), "runs": []})
            ctx.log(f"  convert: realtime jackd refused here: {error}")
    spec = {"case": "convert", "part": "offline", "conversions": [asdict(c) for c in CONVERSIONS],
            "offline_s": list(plan.offline_s), "reps": plan.offline_reps}
    offline = run_worker(spec, timeout=600)
    if "error" not in offline:
        for r in offline["conversions"]:
            ctx.log(f"  convert: alone, {conversion_text(Conversion(r['channels'], r['in_rate'], r['out_rate']))}: "
                    + ", ".join(f"{name} {100 * m['cpu_per_audio_s']:.3g}%" for name, m in r["methods"].items()))
    return {
        "conversions": [asdict(c) for c in CONVERSIONS], "rows": rows, "skipped": skipped, "seconds": plan.seconds,
        "warmup_s": WARMUP_S, "buffer_s": BUFFER_S, "target_min_s": TARGET_MIN_S, "converter_chunk": CONVERTER_CHUNK,
        "runs": runs, "tone_client_restarts": restarts,
        "stall": {**asdict(STALL), "period": period_for(STALL.in_rate), "aim_s": AIM_S[ctx.mode],
                  "required_s": REQUIRED_S[ctx.mode],
                  "pre_s": PRE_S, "post_s": POST_S, "variants": variants},
        "offline": offline,
    }


# ---- judging and reporting -------------------------------------------------------------------


def _conversions(result: dict) -> list:
    return [Conversion(**c) for c in result["conversions"]]


def _runs(result: dict, row: str, c: Conversion, judged: bool = False) -> list:
    """The good runs of `row` on conversion `c` (`judged`: only those long enough for a target)."""
    return [r for r in result["runs"] if r["row"] == row and "error" not in r and r.get("cpu_per_audio_s") is not None
            and (r["channels"], r["in_rate"], r["out_rate"]) == (c.channels, c.in_rate, c.out_rate)
            and (not judged or r["seconds"] >= result["target_min_s"])]


def _median_cpu(runs: list) -> Optional[float]:
    return statistics.median(r["cpu_per_audio_s"] for r in runs) if runs else None


def _offline(result: dict, c: Conversion) -> Optional[dict]:
    offline = result.get("offline", {})
    if "error" in offline:
        return None
    return next((r for r in offline.get("conversions", []) if (r["channels"], r["in_rate"], r["out_rate"])
                 == (c.channels, c.in_rate, c.out_rate)), None)


def _alone(result: dict, c: Conversion, method: str) -> Optional[float]:
    found = _offline(result, c)
    return found["methods"][method]["cpu_per_audio_s"] if found and method in found["methods"] else None


def pct(x: Optional[float]) -> str:
    """A share of one core, to 3 significant digits."""
    return "n/a" if x is None else f"{100 * x:.3g}%"


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _times(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.3g}×"


def _cpu_target(result: dict, c: Conversion, limit: float) -> dict:
    # The limit is the conversion's cost (the issue sets it next to python-soxr's own cost of the
    # same conversion): the converter alone, no device. The whole process on JACK also pays for
    # capture (JACK's wake-ups), which no conversion method avoids, so it is shown, not judged.
    label = (f"audioring's conversion {conversion_text(c)}: ≤ {100 * limit:g}% of one core (the converter alone, "
             "CPU per second of audio, no device)")
    alone = _alone(result, c, "converter")
    judged = _runs(result, "audioring", c, judged=True)
    measured = (f"the converter alone {pct(alone)}; for scale, on JACK: the whole process (capture and conversion) "
                f"{pct(_median_cpu(judged))}, capture alone at {c.in_rate / 1000:g} kHz "
                f"{pct(_median_cpu(_runs(result, 'capture_only', c)))}")
    return {"label": label, "met": None if alone is None else alone <= limit, "measured": measured}


def _live_target(result: dict) -> dict:
    """The live cost against the real alternative: python-soxr's streaming resampler in a sounddevice callback.

    Both record the same JACK device in the same run, so both pay for capture: the whole process of
    each is compared, for every conversion that both ran long enough to judge.
    """
    pairs = [(c, _median_cpu(_runs(result, "audioring", c, judged=True)),
              _median_cpu(_runs(result, "sd_soxr", c, judged=True))) for c in _conversions(result)]
    known = [(c, ours, theirs) for c, ours, theirs in pairs if ours is not None and theirs is not None]
    return {
        "label": "audioring's whole process on JACK ≤ the usual recipe's (python-soxr's `ResampleStream` fed from a "
                 "sounddevice Python callback) on the same device in the same run, every conversion",
        "met": all(ours <= theirs for _, ours, theirs in known) if known and len(known) == len(pairs) else None,
        "measured": "; ".join(f"{conversion_text(c)}: {pct(ours)} against {pct(theirs)} "
                              f"({_times(_ratio(theirs, ours))} audioring's)" for c, ours, theirs in known),
    }


def targets(result: dict) -> list:
    mono, _, many = _conversions(result)
    found = [_cpu_target(result, mono, TARGET_MONO_CPU), _cpu_target(result, many, TARGET_32_CPU)]
    ratios = [(c, _ratio(_alone(result, c, "converter"), _alone(result, c, "soxr_oneshot")))
              for c in _conversions(result)]
    known = [x for _, x in ratios if x is not None]
    found.append({
        "label": f"audioring's converter within {TARGET_RATIO:g}× of python-soxr's one-shot `soxr.resample` (HQ): CPU "
                 "per second of audio for the same samples, no device, every conversion",
        "met": all(x <= TARGET_RATIO for x in known) if known and len(known) == len(ratios) else None,
        "measured": "; ".join(f"{conversion_text(c)}: {_times(x)} ({pct(_alone(result, c, 'converter'))} against "
                              f"{pct(_alone(result, c, 'soxr_oneshot'))})" for c, x in ratios),
    })
    found.append(_live_target(result))
    stall = result["stall"]
    converting = conversion_text(Conversion(stall["channels"], stall["in_rate"], stall["out_rate"]))
    for variant in stall["variants"]:
        label = (f"audioring loses 0 frames while the GIL is held ≥ {stall['required_s']:g} s (busy), converting "
                 f"{converting} — {variant['server']}")
        if "refused" in variant:
            found.append({"label": label, "met": None, "measured": f"not run: {variant['refused'][:200]}"})
            continue
        asked = [r for r in variant["runs"] if r["recorder"] == "audioring"]
        if not asked:
            continue
        judged = [r for r in asked if "error" not in r and r.get("stall_reached")]
        lost = [r["frames_lost"] for r in judged]
        measured = (f"frames lost per run: {fmt_runs(lost)} (the converter's own losses, device frames: "
                    f"{fmt_runs([r['converter_device_frames_lost'] for r in judged])}); stall held: "
                    f"{fmt_runs([r['held_s'] for r in judged], lambda x: f'{x:.2f} s')}; overflow flags "
                    f"{fmt_runs([r['overflow_flags'] for r in judged])}")
        redone = sum(len(r.get("short_attempts", [])) for r in asked)
        if redone:
            measured += f"; {redone} attempt(s) whose stall fell short of {stall['required_s']:g} s redone, unjudged"
        if len(asked) > len(judged):
            measured += f"; {len(asked) - len(judged)} run(s) not judged (stall still too short, or failed)"
        found.append({"label": label, "met": all(x == 0 for x in lost) if judged else None, "measured": measured})
    return found


def _cpu_cell(result: dict, row: str, c: Conversion) -> str:
    group = [r for r in result["runs"] if r["row"] == row
             and (r["channels"], r["in_rate"], r["out_rate"]) == (c.channels, c.in_rate, c.out_rate)]
    good = _runs(result, row, c)
    errors = [r["error"] for r in group if "error" in r]
    if not good:
        return f"error: {errors}" if errors else "—"
    median = _median_cpu(good)
    text = f"**{pct(median)}**"
    if len(good) > 1:
        text += f" ({fmt_runs([r['cpu_per_audio_s'] for r in good], pct)})"
    reference = _median_cpu(_runs(result, "audioring", c))
    if row not in ("audioring", "capture_only") and reference:
        text += f", {_times(median / reference)} audioring's"
    flags = ("flags not exposed" if any(r["overflow_flags"] is None for r in good)
             else "flags " + fmt_runs([r["overflow_flags"] for r in good]))
    text += (f"; {flags}; lost {fmt_runs([r['frames_lost'] for r in good])}; missed "
             f"{fmt_runs([r['jack']['process_errors'] for r in good])} "
             f"({sum(r['jack']['portaudio_late'] for r in good)})")
    if any("stop_error" in r for r in good):
        text += "; stop failed"
    return text + (f"; errors: {errors}" if errors else "")


def _offline_cell(found: Optional[dict], method: str) -> str:
    if not found or method not in found["methods"]:
        return "n/a"
    m = found["methods"][method]
    text = f"**{pct(m['cpu_per_audio_s'])}** (wall {pct(m['wall_per_audio_s'])})"
    reference = found["methods"].get("soxr_oneshot")
    if method != "soxr_oneshot" and reference:
        text += f", {_times(_ratio(m['cpu_per_audio_s'], reference['cpu_per_audio_s']))}"
    return text


def _error_text(e: Optional[dict]) -> str:
    if not e:
        return "n/a"
    if e["identical"]:
        return "0 (identical)"
    snr = "∞" if e["snr_db"] is None else f"{e['snr_db']:.1f} dB"
    text = f"{e['max_abs']:.2e}, SNR {snr}"
    if e["frames"] != e["reference_frames"]:
        text += f"; {e['frames']:,} frames against {e['reference_frames']:,}"
    return text


def markdown(result: dict) -> list:
    conversions = _conversions(result)
    header = "| | " + " | ".join(conversion_text(c) for c in conversions) + " |"
    rule = "|---|" + "---:|" * len(conversions)
    periods = ", ".join(f"{rate / 1000:g} kHz: {period_for(rate)}" for rate in sorted({c.in_rate for c in conversions}))
    lines = [
        "### CPU per second of audio on JACK (whole process)",
        "",
        f"JACK dummy at the input rate (periods {periods} frames), a tone per channel injected by a separate JACK "
        f"client; each recorder records the output rate in a fresh process, float32, buffer {result['buffer_s']} s; "
        f"{result['seconds']:g} s measured after {result['warmup_s']:g} s of warm-up. Each cell: **process CPU per "
        "second of audio** (`time.process_time`, all threads; 100% = one core; median, then run by run), and for the "
        "recipes the ratio to audioring's median; paInputOverflow flags; frames lost (output frames: device frames "
        "due by JACK's clock minus those received, beyond one period, plus audioring's converter's own losses); JACK "
        "cycles jackd logged as missed (in parentheses: those blamed on PortAudio's client).",
        "",
        header.replace("| |", "| recorder |", 1), rule,
    ]
    for row in ROWS:
        if any(r["row"] == row for r in result["runs"]):
            lines.append(f"| {ROW_LABELS[row]} | " + " | ".join(_cpu_cell(result, row, c) for c in conversions) + " |")
    if any(r["row"] == "capture_only" for r in result["runs"]):
        cells = []
        for c in conversions:
            converting, capture = _median_cpu(_runs(result, "audioring", c)), _median_cpu(_runs(result, "capture_only",
                                                                                                   c))
            cells.append("n/a" if converting is None or capture is None else pct(converting - capture))
        lines.append("| audioring: conversion's share (converting − capture alone, medians) | " + " | ".join(cells)
                     + " |")
    for row, reason in result.get("skipped", {}).items():
        lines += ["", f"{ROW_LABELS[row]}: not run ({reason})."]
    if result.get("tone_client_restarts"):
        lines += ["", f"The tone client was restarted {result['tone_client_restarts']} time(s) (the tones had not "
                  "arrived; that run was run again)."]
    lines += [
        "",
        "The jackd process and the tone client are not counted. Flags and missed cycles cover the whole worker run, "
        "frames lost only the measured window. Losses are counted in device frames (then scaled to output frames): "
        "a resampler's output count moves with its latency (by a few hundred frames, libsoxr's as well), and "
        "block-wise `resample_poly` rounds every block up (256 frames at 3:1 make 86; see the block-edge table).",
        "",
        "### The conversion alone (no device)",
        "",
    ]
    offline = result.get("offline", {})
    if "error" in offline:
        return lines + [f"Failed: {offline['error']}: {offline.get('stderr', '')[-500:]!r}", ""]
    found = [_offline(result, c) for c in conversions]
    lines += [
        "The same kind of signal (the tones, plus noise at 0.01 rms), float32, converted in one fresh process: "
        + ", ".join(f"{f['seconds']:g} s of {conversion_text(c)}" for c, f in zip(conversions, found) if f)
        + f"; medians of {len(next(iter(found[0]['methods'].values()))['cpu_runs']) if found[0] else '?'} "
        "repetitions taking turns. Each cell: **CPU per second of audio** (100% = one core), wall time per second of "
        "audio, and the ratio of CPU to python-soxr's one-shot. audioring's converter: `_core.Converter` as "
        f"`AudioRecord` builds it ({result['converter_chunk']}-frame steps into a ring), over a capture ring filled "
        "beforehand, timed from `start()` to the end of `stop()` (its thread converts everything, flushes libsoxr "
        "and exits; the timing thread waits without CPU). Chunks and blocks: the JACK period at the input rate.",
        "",
        header.replace("| |", "| method |", 1), rule,
    ]
    for method, label in METHODS.items():
        if any(f and method in f["methods"] for f in found):
            lines.append(f"| {label} | " + " | ".join(_offline_cell(f, method) for f in found) + " |")
    lines.append("| audioring on JACK, whole process (capture included) ÷ python-soxr one-shot | " + " | ".join(
        _times(_ratio(_median_cpu(_runs(result, "audioring", c)), _alone(result, c, "soxr_oneshot")))
        for c in conversions) + " |")
    libsoxr = offline.get("libsoxr", {})
    lines += [
        "",
        f"libsoxr: audioring's {libsoxr.get('audioring', '?')}, python-soxr's {libsoxr.get('python-soxr', 'n/a')}. "
        "Whole-process CPU on JACK also counts the capture (PortAudio's JACK client thread, the ring) and the "
        "wake-ups of each period, which the conversion alone does not.",
        "",
        "### Block-edge error",
        "",
        "Each output against a one-shot conversion of the same input, over their common length: max abs difference "
        "(full scale 1.0) and SNR; the lengths where they differ. Per JACK period, `resample_poly` rounds every "
        "block's output up, so its stream drifts ahead of the signal and the error grows with time; blocks of a "
        "multiple of the decimation make whole output frames, leaving the error of the block edges alone (each "
        "block filtered as if the signal were zero outside it).",
        "",
        "| conversion | scipy `resample_poly` per JACK period vs one-shot | the block edges alone: `resample_poly` "
        "per block of a multiple of the decimation vs one-shot | python-soxr `ResampleStream` per JACK period vs "
        "one-shot `resample` (scale) | audioring's converter vs python-soxr one-shot |",
        "|---|---:|---:|---:|---:|",
    ]
    for c, f in zip(conversions, found):
        if f:
            e = f["errors"]
            edges = _error_text(e.get("poly_edges_vs_oneshot"))
            lines.append(f"| {conversion_text(c)} | {f['period']}-frame blocks: "
                         f"{_error_text(e.get('poly_blocks_vs_oneshot'))} | "
                         + (f"{f['edge_block']}-frame blocks: {edges}" if "edge_block" in f else edges) + " | "
                         f"{f['period']}-frame chunks: {_error_text(e.get('soxr_stream_vs_oneshot'))} | "
                         f"{_error_text(e.get('converter_vs_soxr_oneshot'))} |")
    lines += ["", *_stall_lines(result), ""]
    return lines


def _stall_row(label: str, group: list, out_rate: int) -> str:
    good = [r for r in group if "error" not in r]
    errors = [r["error"] for r in group if "error" in r]
    if not good:
        return f"| {label} | error: {errors} | | | | | |"
    lost = []
    for r in good:
        text = f"{r['frames_lost']:,}"
        lost.append(text if r.get("stall_reached") else f"({text}: stall {r['held_s']:.2f} s, not judged)")
    worst = max(r["frames_lost"] for r in good)
    redone = sum(len(r.get("short_attempts", [])) for r in group)
    first = f"**{' / '.join(lost)}**" + (f" (up to {worst / out_rate:.3g} s)" if worst else "")
    first += (f"; {redone} short attempt(s) redone" if redone else "") + (f"; errors: {errors}" if errors else "")
    converter = ("—" if not any("device_frames_lost" in (r.get("conversion") or {}) for r in good)
                 else fmt_runs([r["converter_device_frames_lost"] for r in good]))
    blamed = sum(r["jack"]["portaudio_late"] for r in good)
    missed = f"{fmt_runs([r['jack']['process_errors'] for r in good])} ({blamed})"
    delivered = fmt_runs([(r["frames_delivered"], r["frames_due"]) for r in good], lambda p: f"{p[0]:,} of {p[1]:,}")
    cells = [label, first, fmt_runs([r["held_s"] for r in good], lambda x: f"{x:.2f} s"),
             fmt_runs([r["overflow_flags"] for r in good]), converter, missed, delivered]
    return "| " + " | ".join(cells) + " |"


def _stall_lines(result: dict) -> list:
    stall = result["stall"]
    c = Conversion(stall["channels"], stall["in_rate"], stall["out_rate"])
    lines = [
        f"### Frames lost while the GIL is held ≥ {stall['required_s']:g} s, converting {conversion_text(c)}",
        "",
        f"JACK dummy at {c.in_rate / 1000:g} kHz (period {stall['period']}), tone injected. The worker's main thread "
        f"holds the GIL in one C call (`sum(range(n))`, calibrated in the worker, aimed at {stall['aim_s']:g} s), from "
        f"{stall['pre_s']:g} s after the tone arrived; the window runs from just before the stall to "
        f"{stall['post_s']:g} s after it. A run is judged only if its measured stall reached {stall['required_s']:g} s "
        "(a short one is redone, aimed longer). Each row, run by run: **frames lost** as above (output frames: device "
        "frames due by JACK's clock minus those received, plus the converter's own losses); how long the GIL was "
        "held; paInputOverflow flags; the device frames audioring's converter itself lost; JACK cycles jackd logged "
        "as missed (in parentheses: those blamed on PortAudio's client); output frames delivered against due over "
        "the window (for scale: a resampler's output count also moves with its latency, by a few hundred frames).",
        "",
        "| server | recorder | frames lost | stall held | overflow flags | converter's own losses | JACK cycles missed "
        "| output frames delivered of due |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for variant in stall["variants"]:
        if "refused" in variant:
            notes.append(f"**{variant['server']}: not run — realtime scheduling was refused here** "
                         f"({variant['refused']}).")
            continue
        for recorder in dict.fromkeys(r["recorder"] for r in variant["runs"]):
            group = [r for r in variant["runs"] if r["recorder"] == recorder]
            label = "audioring `AudioRecord`, native conversion" if recorder == "audioring" else LABELS[recorder]
            lines.append(_stall_row(f"{variant['server']} | {label}", group, c.out_rate))
        late = sum(r["jack"]["driver_late"] for r in variant["runs"] if "jack" in r)
        blamed: dict = {}
        for r in variant["runs"]:
            for client, count in r.get("jack", {}).get("late_clients", {}).items():
                blamed[client] = blamed.get(client, 0) + count
        rt_workers = sum(1 for r in variant["runs"] if r.get("realtime_threads"))
        notes.append(f"{variant['server']}: jackd's threads with a realtime policy: "
                     f"{realtime_text(variant.get('jackd_scheduling', {}))}; runs whose recorder process had a "
                     f"realtime thread (its JACK client's): {rt_workers} of {len(variant['runs'])}; jackd's dummy "
                     f"driver woke late {late} times over all runs; clients jackd blamed for late cycles: "
                     + (", ".join(f"{k} {v}" for k, v in sorted(blamed.items())) or "none") + ".")
    lines += [
        "",
        *[f"- {note}" for note in notes],
        "",
        "A busy stall also keeps one core busy: without realtime scheduling (jackd `-r`), jackd, the tone client and "
        "the recorder's JACK thread share what is left of the machine, so cycles can be missed whatever the "
        "recorder (the stall case separates the two with a sleeping stall). The queue recipe with `resample_poly` in "
        "the consumer has the queue recipe's Python callback, so it loses what that recipe loses in the stall case; "
        "it is not run again here.",
    ]
    return lines


def chart(result: dict, path: Path, stamp: str) -> None:
    from harness import charts  # here, not at the top: every worker imports this module, and matplotlib is slow

    conversions = _conversions(result)
    series = []
    for row in ROWS:
        if any(r["row"] == row for r in result["runs"]):
            heights = [_median_cpu(_runs(result, row, c)) for c in conversions]
            series.append((f"JACK, whole process: {ROW_LABELS[row]}".replace("`", ""),
                           [math.nan if h is None else 100 * h for h in heights]))
    for method in ("converter", "soxr_oneshot"):
        heights = [_alone(result, c, method) for c in conversions]
        if any(h is not None for h in heights):
            series.append((f"alone: {METHODS[method]}".replace("`", ""),
                           [math.nan if h is None else 100 * h for h in heights]))
    with charts.figure(path, stamp, figsize=(9, 6.2), bottom=0.05) as (fig, ax):
        charts.grouped_bars(ax, [conversion_text(c) for c in conversions], series, annotate=lambda h: f" {h:.2g}")
        for index, c in enumerate(conversions):
            limit = {CONVERSIONS[0]: TARGET_MONO_CPU, CONVERSIONS[2]: TARGET_32_CPU}.get(c)
            if limit is not None:
                ax.hlines(100 * limit, index - 0.45, index + 0.45, colors="grey", linestyles=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylabel("CPU per second of audio (% of a core, median)")
        ax.set_title("Sample-rate conversion: recording cost on JACK, and the conversion alone\n"
                     "(dotted: audioring's target for that conversion)", fontsize=10)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=1)
