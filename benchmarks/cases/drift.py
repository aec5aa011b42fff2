"""Two devices with different clocks in one recording: drift compensation side by side (issue 23).

One run, the contenders recording one after another from the same two devices (all at once, on 2 cores,
they starve each other):

* a JACK dummy server whose clock runs 200 ppm fast (``JackServer(clock_error_ppm=200)``: jackd under
  libfaketime), 8 ports, a 1 kHz tone injected into each recorder's ports by a JACK client
  (``inject_tones``: its phase follows JACK's frame clock, so the tone is exact in JACK's clock);
* a PulseAudio null sink (``PulseServer``, the system clock), 8 channels, a 1 kHz tone played into it
  (``pacat``, consumed at the sink's clock: exact in PulseAudio's clock).

Contenders:

* ``alsa_in`` (jackd2) bridging the ALSA ``pulse`` device into the JACK server with its adaptive resampler,
  recorded in JACK by a JACK client (``worker`` role ``jackrec``) together with the JACK tone;
* ``zita-a2j`` (zita-ajbridge) the same way, where it can open the ``pulse`` device (it cannot: it needs a
  hardware-like ALSA device; its error is the result);
* two uncompensated recorders, a ``sounddevice.InputStream`` on each device in one process, their blocks
  put side by side frame for frame (the slide);
* audioring: ``AudioRecord(16, 48000, ..., device=[(pulse, [1..8]), (jack, [1..8])])``, PulseAudio the clock
  master, JACK resampled to it natively.

What is measured, per contender, from its recording (``audioring.testing.analyze_tone`` on the first
channel of each device, 0.1 s windows): each tone's phase in samples; their difference is the alignment. In
the recording's timebase the two tones must drift apart at the devices' true relative rate (JACK/PulseAudio
= 1 + 200e-6 exactly: libfaketime's factor; PulseAudio's null sink runs on the system clock); what is left
after that is the alignment error. Reported: the residual drift (its slope after the settling time, ppm),
the wander (its peak-to-peak after settling, samples), the time to lock (from which on it stays within +-1
sample of where it ends), each channel's tone SNR, and CPU (% of a core: the recorder's process, or
alsa_in's, from /proc; the JACK client recording alsa_in's output is the instrument and is not counted).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from harness.context import RunContext
from harness.measured_process import cpu_seconds
from harness.servers import JackLog, RealtimeUnavailable, jack_server
from harness.workers import child_command
from reports.drift import (
    CHANNELS,
    CLOCK_ERROR_PPM,
    CONTENDERS,
    LOCK_SAMPLES,
    RATE,
    SECONDS,
    SETTLE_S,
    TITLE,
    TONE_HZ,
    chart,
    markdown,
    targets,
)

__all__ = ["TITLE", "chart", "markdown", "run", "targets", "worker"]

PERIOD = 480  # 10 ms: the dummy driver's period in whole microseconds, so its nominal rate is exact
LEAD_S = 1.0  # recorded before the analysed part: streams starting, the tones' connections made
WINDOW_S = 0.1
JACKREC = "driftrec"  # the JACK client recording the bridges' outputs with the JACK tone
BRIDGES = {"alsa_in": "drift_alsa_in", "zita_a2j": "drift_zita"}  # their JACK client names
BRIDGE_PROGRAMS = {"alsa_in": "alsa_in", "zita_a2j": "zita-a2j"}
TRUE_RATIO = 1 + CLOCK_ERROR_PPM * 1e-6  # JACK's clock over PulseAudio's: libfaketime's factor


# ---- the worker processes ------------------------------------------------------------------------


def _device(sd: Any, name: str, hostapi: str) -> int:
    apis = sd.query_hostapis()
    for device in sd.query_devices():
        if device["name"] == name and hostapi in apis[device["hostapi"]]["name"] and device["max_input_channels"]:
            return int(device["index"])
    raise RuntimeError(f"no {hostapi} input device {name!r}:\n{sd.query_devices()}")


def _jackrec(spec: dict) -> dict:
    """A JACK client recording the JACK tone (in_1) and each bridge's first output (in_2, in_3)."""
    import jack

    total = int((spec["seconds"] + LEAD_S) * RATE)
    data = np.zeros((total, 1 + len(BRIDGES)), dtype=np.float32)
    written = [0]
    client = jack.Client(JACKREC, no_start_server=True)
    ports = [client.inports.register(f"in_{i + 1}") for i in range(data.shape[1])]

    def process(frames: int) -> None:
        start = written[0]
        n = min(frames, total - start)
        for i, port in enumerate(ports):
            data[start:start + n, i] = port.get_array()[:n]
        written[0] = start + n

    client.set_process_callback(process)
    client.activate()
    connected = {}
    deadline = time.monotonic() + 5.0
    while written[0] < total:
        for i, (name, bridge) in enumerate(BRIDGES.items()):
            if not connected.get(name) and time.monotonic() < deadline:
                with contextlib.suppress(jack.JackError):
                    client.connect(f"{bridge}:capture_1", ports[i + 1])
                    connected[name] = written[0] / RATE
        time.sleep(0.05)
    client.deactivate()
    client.close()
    np.save(Path(spec["out"]) / "jackrec.npy", data)
    return {"frames": written[0], "connected_at_s": connected}


def _audioring(spec: dict) -> dict:
    import sounddevice as sd

    from audioring import AudioRecord

    pulse, jack_index = _device(sd, "pulse", "ALSA"), _device(sd, "system", "JACK")
    inputs = list(range(1, CHANNELS + 1))
    total = int((spec["seconds"] + LEAD_S) * RATE)
    kept = np.zeros((total, 2), dtype=np.float32)  # the first channel of each device
    block = RATE // 10
    with AudioRecord(2 * CHANNELS, RATE, RATE * 2, device=[(pulse, inputs), (jack_index, inputs)]) as rec:
        cpu0, wall0 = time.process_time(), time.monotonic()
        done = 0
        for frames in rec.stream(block, timeout=5.0):
            n = min(block, total - done)
            kept[done:done + n] = frames[:n, [0, CHANNELS]]
            done += n
            if done >= total:
                break
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        drift = list(rec.clock_drift)
        stats = [s._asdict() if hasattr(s, "_asdict") else vars(s) for s in rec.device_stats]
    np.save(Path(spec["out"]) / "audioring.npy", kept)
    return {"cpu_s": cpu, "wall_s": wall, "clock_drift_ppm": drift, "device_stats": stats, "frames": done}


def _uncompensated(spec: dict) -> dict:
    import sounddevice as sd

    devices = {"pulse": _device(sd, "pulse", "ALSA"), "jack": _device(sd, "system", "JACK")}
    total = int((spec["seconds"] + LEAD_S) * RATE)
    kept = {name: np.zeros(total, dtype=np.float32) for name in devices}
    done = {name: 0 for name in devices}

    def callback_for(name: str) -> Any:
        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            start = done[name]
            n = min(frames, total - start)
            kept[name][start:start + n] = indata[:n, 0]
            done[name] = start + n
        return callback

    streams = [sd.InputStream(device=index, channels=CHANNELS, samplerate=RATE, callback=callback_for(name))
               for name, index in devices.items()]
    cpu0, wall0 = time.process_time(), time.monotonic()
    for stream in streams:
        stream.start()
    while min(done.values()) < total:
        time.sleep(0.05)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    for stream in streams:
        stream.stop()
        stream.close()
    np.save(Path(spec["out"]) / "uncompensated.npy", np.stack([kept["pulse"], kept["jack"]], axis=1))
    return {"cpu_s": cpu, "wall_s": wall, "frames": dict(done)}


def worker(spec: dict) -> dict:
    return {"jackrec": _jackrec, "audioring": _audioring, "uncompensated": _uncompensated}[spec["role"]](spec)


# ---- the analysis ---------------------------------------------------------------------------------


def _alignment(pulse: np.ndarray, jack: np.ndarray, expected_ppm: float, settle_s: float) -> dict:
    """The alignment of the JACK tone against the PulseAudio tone in one recording (both 1-D, same timebase)."""
    from audioring.testing import analyze_tone

    start = int(LEAD_S * RATE)
    length = min(len(pulse), len(jack)) - start
    a_pulse = analyze_tone(pulse[start:start + length], RATE, TONE_HZ, WINDOW_S)
    a_jack = analyze_tone(jack[start:start + length], RATE, TONE_HZ, WINDOW_S)
    times = a_jack.times
    # The JACK tone must run ahead by the true relative rate: what is left is the alignment error (samples).
    error = (a_jack.phase - a_pulse.phase) - expected_ppm * 1e-6 * times * RATE
    after = times >= settle_s
    slope = np.polyfit(times[after] * RATE, error[after], 1)[0]
    final = float(np.median(error[times >= times[-1] * 0.8]))
    outside = np.flatnonzero(np.abs(error - final) > LOCK_SAMPLES)
    lock_s: Optional[float] = 0.0 if not len(outside) else float(times[outside[-1] + 1]) if \
        outside[-1] + 1 < len(times) else None
    if lock_s is not None and lock_s > times[-1] / 2:
        lock_s = None  # within a sample only near the end: sliding, not locked
    return {
        "residual_ppm": float(slope * 1e6),
        "wander_pp_samples": float(np.ptp(error[after])),
        "lock_s": lock_s,
        "snr_db": {"pulse": a_pulse.snr_db, "jack": a_jack.snr_db},
        "tone_ppm": {"pulse": a_pulse.ppm, "jack": a_jack.ppm},
        "analysed_s": float(length / RATE),
        "final_error": final,
        # The alignment error once a second, for the chart.
        "error_trace": [[float(t), float(e)] for t, e in zip(times[::10], error[::10])],
    }


# ---- the run ---------------------------------------------------------------------------------------


def _start_worker(role: str, seconds: float, out: Path, env: dict) -> subprocess.Popen:
    spec = {"case": "drift", "role": role, "seconds": seconds, "out": str(out)}
    return subprocess.Popen(child_command("case", json.dumps(spec)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})


def _finish_worker(proc: subprocess.Popen, timeout: float) -> dict:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        return {"error": f"worker timed out after {timeout:.0f} s", "stderr": stderr[-2000:]}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"worker exited with {proc.returncode}", "stderr": stderr[-3000:]}
    return dict(json.loads(lines[-1]))


def _start_bridge(name: str, env: dict, directory: Path) -> subprocess.Popen:
    client, program = BRIDGES[name], BRIDGE_PROGRAMS[name]
    with open(directory / f"{name}.log", "w") as log:  # the child has its own copy of the descriptor
        return subprocess.Popen([program, "-j", client, "-d", "pulse", "-c", str(CHANNELS), "-r", str(RATE)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **env})


@contextlib.contextmanager
def _servers(ctx: RunContext) -> Any:
    from audioring.testing import PulseServer, tone

    with contextlib.ExitStack() as stack:
        pulse = stack.enter_context(PulseServer(RATE, CHANNELS))
        stack.enter_context(pulse.play(tone([TONE_HZ] * CHANNELS, RATE)))
        server, realtime = None, ctx.realtime
        if realtime:
            try:
                server = stack.enter_context(jack_server(RATE, PERIOD, CHANNELS, realtime=True,
                                                         clock_error_ppm=CLOCK_ERROR_PPM))
            except RealtimeUnavailable as error:
                ctx.log(f"  drift: no realtime jackd ({error}); jackd -r")
                realtime = False
        if server is None:
            server = stack.enter_context(jack_server(RATE, PERIOD, CHANNELS, clock_error_ppm=CLOCK_ERROR_PPM))
        yield pulse, server, realtime


def _record_bridges(ctx: RunContext, seconds: float, out: Path, env: dict, server: Any) -> dict:
    """alsa_in and zita-a2j bridging ``pulse`` into JACK, recorded there with the JACK tone; their CPU."""
    results: dict = {}
    with server.inject_tones([TONE_HZ], JACKREC):
        missing = {name: program for name, program in BRIDGE_PROGRAMS.items() if shutil.which(program) is None}
        bridges = {name: _start_bridge(name, env, out) for name in BRIDGES if name not in missing}
        try:
            time.sleep(1.0)  # the bridges open the pulse device (or fail) before the recording starts
            cpu0 = {name: cpu_seconds(p.pid) for name, p in bridges.items()}
            wall0 = time.monotonic()
            done = _finish_worker(_start_worker("jackrec", seconds, out, env), seconds * 2 + 120)
            wall = time.monotonic() - wall0
            cpu1 = {name: cpu_seconds(p.pid) for name, p in bridges.items()}
        finally:
            exits = {name: proc.poll() for name, proc in bridges.items()}
            for proc in bridges.values():
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
    for name, program in missing.items():
        results[name] = {"error_of_anchor": f"{program} is not installed (benchmarks/README.md: Setting up)"}
    for name in bridges:
        said = (out / f"{name}.log").read_text(errors="replace").strip()
        results[name] = {"bridge_exit": exits[name], "bridge_said": said[-600:]}
        if exits[name] is not None:
            # The anchor could not run here: a result, not a failure of the benchmark.
            results[name]["error_of_anchor"] = f"{name} exited with {exits[name]}: {said[-300:]}"
        elif "error" in done:
            results[name]["error"] = done["error"]
        else:
            before, after = cpu0[name], cpu1[name]
            if before is not None and after is not None:
                results[name].update(cpu_s=after - before, wall_s=wall)
    if "error" not in done:
        data = np.load(out / "jackrec.npy")
        for column, name in enumerate(BRIDGES, start=1):
            if results[name].get("bridge_exit", "not run") is None:
                try:
                    # Recorded in JACK's timebase: the PulseAudio tone arrives 1/ratio slow.
                    results[name].update(_alignment(data[:, column], data[:, 0], 1e6 * (1 - 1 / TRUE_RATIO),
                                                    SETTLE_S[ctx.mode]))
                except ValueError as error:
                    results[name]["error_of_anchor"] = f"nothing analysable arrived from {name}: {error}"
    return results


def _record_in_process(ctx: RunContext, role: str, seconds: float, out: Path, env: dict) -> dict:
    """audioring, or the two uncompensated streams, recording both devices in one process."""
    done = _finish_worker(_start_worker(role, seconds, out, env), seconds * 2 + 120)
    if "error" in done:
        return done
    data = np.load(out / f"{role}.npy")
    # audioring's timebase is PulseAudio's (the master): the JACK tone arrives ratio fast. The uncompensated
    # pair has no common timebase; a true alignment would show the same ~200 ppm, which it lacks: the slide.
    expected = CLOCK_ERROR_PPM if role == "audioring" else 1e6 * (1 - 1 / TRUE_RATIO)
    return {**done, **_alignment(data[:, 0], data[:, 1], expected, SETTLE_S[ctx.mode])}


def run(ctx: RunContext) -> dict:
    seconds = SECONDS[ctx.mode]
    results: dict = {}
    with _servers(ctx) as (pulse, server, realtime), tempfile.TemporaryDirectory(prefix="drift-") as tmp:
        out = Path(tmp)
        env = {**pulse.env, **server.env}
        log = JackLog(server)
        jack_logs = {}
        # One contender at a time, each in the same servers' clocks: on 2 cores, all at once starve each other
        # (alsa_in then took 90% of a core and jackd missed thousands of cycles in a trial).
        with server.inject_tones([TONE_HZ] * CHANNELS, "PortAudio"):
            for role in ("audioring", "uncompensated"):
                ctx.log(f"  drift: {role}: recording {seconds:g} s (+{LEAD_S:g} s lead)")
                results[role] = _record_in_process(ctx, role, seconds, out, env)
                jack_logs[role] = log.since()
        ctx.log(f"  drift: alsa_in, zita-a2j: recording {seconds:g} s (+{LEAD_S:g} s lead)")
        results.update(_record_bridges(ctx, seconds, out, env, server))
        jack_logs["bridges"] = log.since()
    for name in CONTENDERS:
        r = results.get(name, {})
        ctx.log(f"  drift: {name:14} " + (
            f"ERROR {r.get('error') or r.get('error_of_anchor')}" if "residual_ppm" not in r else
            f"residual {r['residual_ppm']:+.3f} ppm, wander {r['wander_pp_samples']:.2f} samples p-p, lock "
            f"{'never' if r['lock_s'] is None else format(r['lock_s'], '.1f') + ' s'}, SNR "
            f"{min(r['snr_db'].values()):.1f} dB"))
    return {"rate": RATE, "period": PERIOD, "channels": CHANNELS, "tone_hz": TONE_HZ,
            "clock_error_ppm": CLOCK_ERROR_PPM, "seconds": seconds, "lead_s": LEAD_S, "settle_s": SETTLE_S[ctx.mode],
            "window_s": WINDOW_S, "realtime": realtime, "jack": jack_logs,
            "results": results}
