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

from harness.context import RunContext
from harness.conversions import CONVERSIONS, ROWS, Conversion, conversion_text, period_for
from harness.gil import AIM_S, REQUIRED_S, holder, until_stall_reached
from harness.recorders import installed, missing
from harness.servers import SERVER_KINDS, JackLog, RealtimeUnavailable, jack_server, scheduling
from harness.workers import run_worker
from reports.convert import TITLE, chart, markdown, targets

__all__ = ["TITLE", "chart", "markdown", "run", "targets", "worker"]

#: What audioring's converter reads per step (``ConverterConfig::chunk``): how far its output may lag.
CONVERTER_CHUNK = 1024
WARMUP_S = 0.5
BUFFER_S = 1
SIGNAL_WAIT_S = 10.0

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

#: JACK runs shorter than this are shown but not judged (the quick run's are).
TARGET_MIN_S = 4.0


def tones(channels: int) -> list:
    """A distinct integer-Hz tone per channel (below 4 kHz: under every output rate's Nyquist)."""
    return [440 + 110 * i for i in range(channels)]


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
