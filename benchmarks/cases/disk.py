"""Sustained recording to a real disk and to tmpfs: 192 kHz int32 at 64, 128 and 256 channels (issue 20).

One realtime JACK dummy server (``jackd -R``, 256 ports, period 1024; ``-r``
with ``--no-realtime`` or where realtime scheduling is refused, labelled so),
one ramp client (``harness/ramp.py``, ``unit`` encoding: it survives int32)
feeding each recorder's first and last input (not all: a connection per
channel would change JACK's graph 256 times as each recording starts), and side by side, one after another, on
each filesystem and at each width, each recorder in its own process for
`seconds` (full: 60 s; quick: 1.5 s at 64 channels, on tmpfs alone):

* **jack_capture** (C, a disk thread; the anchor), as packaged:
  ``jack_capture -c N -b 32 -d SECONDS -f wav -mc`` (``-mc``: it connects
  nothing itself, where it would otherwise undo the ramp client's connections
  whenever JACK's graph changes; its other inputs record silence). WAV stops
  at 4 GiB, where it goes on in a new file; the parts are read as one
  recording. Its own reports: the overruns (its buffer was full: it writes
  silence instead) and the JACK xruns it printed;
* **the standard Python recipe** (sounddevice's ``rec_unlimited.py``:
  ``InputStream`` + ``queue.Queue`` + soundfile, ``harness/sd_file_recipe.py``),
  int32 blocks into an RF64 file, counting its callback's overflow flags;
* **audioring** ``AudioRecord.record_to`` from Python, with a 1 s ring, while
  the main thread holds the GIL (sleeping in one C call, ``harness/gil.py``)
  for 2.5 s (quick: 1.2 s) from 30 % of the recording on;
* **audioring** ``record`` (the command line: ``python -m audioring record OUT
  -d JACK-DEVICE -c N -r 192000 -t int32 --seconds S``, its ring at the
  default ``--buffer-seconds``; its own summary's ``overflows:`` line read).

The audioring rows need ``record_to`` (issue 20's writer); an audioring without
it is said so in the report, and those rows are left out.

Per run: frames lost, from the files' content (``harness/ramp_files.py``: the
same way for every recorder; silence written in place of lost frames counts as
lost, and is shown too); overflow flags (PortAudio's, as the recorder counted
them) or jack_capture's xruns and overruns; the JACK cycles jackd logged as
missed; CPU per second of audio (the process's user + system time, all
threads, from when its files hold 1 MiB (``START_BYTES``) to its exit, over the
seconds of audio written meanwhile: ``harness/measured_process.py``); write
throughput (bytes written over that time, up to when the files last grew: a
recorder that keeps up writes at the data rate, 49 MB/s at 64 ch, 197 MB/s at
256 ch).

The limits, on the same filesystems: ``dd if=/dev/zero bs=1M`` of the widest
recording's size, with ``conv=fdatasync`` (buffered, as the recorders write,
then flushed) and with ``oflag=direct``. And audioring's file writer alone, as
fast as it goes: a shared ``Ring`` filled beforehand with the ramp (256 ch,
10 s; quick: 0.5 s), read by ``attach()`` and written out by ``record_to(path,
start=<its oldest frame>, frames=<all>)``: audio bytes over the time from that
call to the writer's end (``wait()``).

Disk space: a 60 s recording at 256 ch is 11.8 GB. Each filesystem is checked
before it is used (free space, and memory for tmpfs); one that is short is
refused with a message saying what it needs, and its rows are left out. Every
file is deleted as soon as it is measured. The real disk is a directory under
``/var/tmp`` (``AUDIORING_BENCH_DISK_DIR`` to choose another), tmpfs one under
``/dev/shm``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from harness.context import RunContext
from harness.measured_process import run_measured
from harness.ramp import UNIT_BITS, UNIT_MODULO, RampSource
from harness.ramp_files import check_recording
from harness.servers import SERVER_KINDS, JackLog, RealtimeUnavailable, jack_server, scheduling
from harness.workers import child_command, run_worker
from reports.disk import TITLE, chart, markdown, targets

__all__ = ["TITLE", "chart", "markdown", "run", "targets", "worker"]

RATE = 192000
PERIOD = 1024
SAMPLE_BYTES = 4  # int32
#: Per mode: filesystems, channel counts, seconds per recording, the GIL hold in the record_to run (longer than
#: its ring), the writer-alone drain. Quick: a smoke run of every recorder and limit (about 15 s of the
#: whole quick run's 2 minutes), on tmpfs alone.
PLAN = {
    "full": {"filesystems": ("disk", "tmpfs"), "widths": (64, 128, 256), "seconds": 60.0, "hold_s": 2.5,
             "drain_seconds": 10.0},
    "quick": {"filesystems": ("tmpfs",), "widths": (64,), "seconds": 1.5, "hold_s": 1.2, "drain_seconds": 0.5},
}
RING_S = 1.0  # record_to's ring: shorter than the GIL hold, so only a writer that needs no GIL keeps up
HOLD_AT = 0.3  # the hold starts at this fraction of the recording
DRAIN_CHANNELS = 256
RECORDERS = ("jack_capture", "sd_recipe", "record_to", "record")
DISK_DIR_VARIABLE = "AUDIORING_BENCH_DISK_DIR"
#: Kept free beyond the largest file (and, on tmpfs, in memory beyond it: rings, page cache, the rest of the run).
SPARE_BYTES = 2 << 30


# ---- in the worker processes -------------------------------------------------------------------


def worker(spec: dict) -> dict:
    return {"device": _device, "sd_recipe": _sd_recipe, "record_to": _record_to, "drain": _drain}[spec["kind"]](spec)


def _device(spec: dict) -> dict:
    import sounddevice as sd

    from harness.servers import jack_device

    return {"device": jack_device(sd)}


def _sd_recipe(spec: dict) -> dict:
    from harness import sd_file_recipe

    return sd_file_recipe.record(spec["path"], spec["device"], spec["channels"], RATE, spec["frames"])


def _record_to(spec: dict) -> dict:
    from audioring import AudioRecord
    from harness.gil import holder

    hold, _ = holder("sleep", spec["hold_s"])
    rec = AudioRecord(spec["channels"], RATE, int(RING_S * RATE), device=spec["device"], dtype="int32")
    try:
        rec.start_recording()
        lags = []
        held = None
        writer = rec.record_to(spec["path"], frames=spec["frames"])
        started = time.monotonic()
        while not writer.wait(timeout=0.02):
            if held is None and time.monotonic() - started >= spec["hold_at_s"]:
                before = time.perf_counter()
                hold()  # ONE C call holding the GIL: the writer must go on without it
                held = time.perf_counter() - before
            lags.append(writer.lag)
        result = {
            "frames_written": writer.frames, "files": writer.files, "gaps": [list(gap) for gap in writer.gaps],
            "writer_frames_lost": writer.frames_lost, "writer_error": writer.error, "writer_end": writer.end,
            "lag_max_frames": max(lags, default=0), "held_s": held,
        }
        try:
            writer.close()
        except OSError:
            pass  # its error is in the result (writer_error), with the files as far as they were written
        result["overflow_flags"] = rec.overflows
        rec.stop()
        return result
    finally:
        rec.close()


def _ramp_block(first: int, frames: int, channels: int):
    """Frames `first` ... of the unit ramp as int32 samples, in every channel (what PortAudio makes of it)."""
    import numpy as np

    values = (np.arange(first, first + frames, dtype=np.int64) % UNIT_MODULO + 1) << (31 - UNIT_BITS)
    return np.repeat(values.astype(np.int32)[:, None], channels, axis=1)


def _drain(spec: dict) -> dict:
    """audioring's writer alone: a shared ring filled beforehand, written out as fast as the writer goes."""
    from audioring import Ring, attach

    total, channels = spec["frames"], spec["channels"]
    name = f"diskbench-{os.getpid()}"
    with Ring(channels, total, "int32", share=name, sampling_rate=RATE) as ring:
        block = 1 << 15
        for first in range(0, total, block):
            ring.write(_ramp_block(first, min(block, total - first), channels))
        reader = attach(name)
        try:
            start = reader.first_frame
            cpu = time.process_time()
            began = time.perf_counter()
            with reader.record_to(spec["path"], start=start, frames=total) as writer:
                done = writer.wait(timeout=600)
                took = time.perf_counter() - began
                cpu = time.process_time() - cpu
            return {"frames_in_ring": ring.frames_written - start, "frames_written": writer.frames,
                    "files": writer.files, "gaps": [list(gap) for gap in writer.gaps], "writer_error": writer.error,
                    "writer_end": writer.end, "finished": done, "seconds": took, "cpu_s": cpu}
        finally:
            reader.close()


# ---- in the harness ----------------------------------------------------------------------------


def _fs_info(directory: Path) -> dict:
    found = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE,TARGET", "-T", str(directory)],
                           capture_output=True, text=True, check=False).stdout.split()
    stat = os.statvfs(directory)
    info = {"directory": str(directory), "free_bytes": stat.f_bavail * stat.f_frsize}
    if len(found) == 3:
        info.update(fstype=found[0], source=found[1], mount=found[2])
    return info


def _memory_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _filesystems(names: tuple) -> list:
    """(name, directory) of the real disk and the tmpfs, in report order, of those named."""
    every = [("disk", Path(os.environ.get(DISK_DIR_VARIABLE, "/var/tmp"))), ("tmpfs", Path("/dev/shm"))]
    return [(name, directory) for name, directory in every if name in names]


def _space_refusal(name: str, info: dict, needed: int) -> Optional[str]:
    """Why this filesystem cannot take the run's largest file, or None."""
    gb = 1e9
    if info["free_bytes"] < needed + SPARE_BYTES:
        return (f"{info['directory']} has {info['free_bytes'] / gb:.1f} GB free; the largest recording of this run "
                f"needs {needed / gb:.1f} GB, plus {SPARE_BYTES / gb:.1f} GB to spare (each file is deleted once "
                f"measured): free space there, or choose another directory with {DISK_DIR_VARIABLE}")
    if name == "tmpfs" and _memory_available() < needed + SPARE_BYTES:
        return (f"tmpfs files live in memory: {_memory_available() / gb:.1f} GB available, the largest recording "
                f"needs {needed / gb:.1f} GB plus {SPARE_BYTES / gb:.1f} GB to spare")
    return None


def _unavailable() -> dict:
    """Recorders that cannot run here, and why."""
    missing = {}
    if shutil.which("jack_capture") is None:
        missing["jack_capture"] = "jack_capture is not installed (Debian package jack-capture)"
    import audioring

    if not hasattr(audioring.AudioRecord, "record_to"):
        reason = (f"this audioring ({audioring.__version__}) has no AudioRecord.record_to (issue 20's file writer), "
                  "which `record_to` and the `record` command need")
        missing["record_to"] = missing["record"] = reason
    return missing


def _delete(paths: list) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _jack_capture_parts(path: Path) -> list:
    """The files of one jack_capture recording: `path`, then the parts it went on in at WAV's 4 GiB."""
    numbered = []
    # Named base.NN.wav, the base with or without its .wav (versions differ): nothing else is in the directory.
    for candidate in path.parent.glob(path.stem + "*.wav"):
        match = re.fullmatch(re.escape(path.stem) + r"(?:\.wav)?\.(\d+)\.wav", candidate.name)
        if match:
            numbered.append((int(match.group(1)), candidate))
    return [path] + [p for _, p in sorted(numbered)] if path.exists() else [p for _, p in sorted(numbered)]


def _jack_capture_counts(text: str) -> dict:
    """What jack_capture printed about its overruns, disk errors and JACK xruns (nothing printed: none)."""

    def total(pattern: str) -> int:
        return sum(int(m) for m in re.findall(pattern, text))

    return {"overruns": total(r"failed with a total of (\d+) overruns"),
            "disk_errors": total(r"failed with a total of (\d+) disk errors"),
            "xruns": total(r"encountered (\d+) jack x-runs"),
            "rotated": len(re.findall(r"4GB limit on wav file almost reached", text))}


def _summary_counts(text: str) -> dict:
    """`audioring record`'s own summary lines (``overflows: N``, ``frames lost: N``)."""
    found = {}
    for key, pattern in (("overflow_flags", r"^overflows: (\d+)"), ("reported_lost", r"^frames lost: (\d+)")):
        match = re.search(pattern, text, re.MULTILINE)
        found[key] = int(match.group(1)) if match else None
    return found


class _Runner:
    """Runs the recorders of one filesystem into its directory, one at a time."""

    def __init__(self, ctx: RunContext, server, ramp: RampSource, device: int, directory: Path, logs: Path) -> None:
        self.ctx, self.server, self.ramp, self.device = ctx, server, ramp, device
        self.directory, self.logs = directory, logs
        self.plan = PLAN[ctx.mode]

    def frames(self) -> int:
        return int(self.plan["seconds"] * RATE)

    def timeout(self) -> float:
        return self.plan["seconds"] * 3 + 120

    def measured(self, command: list, stem: str) -> dict:
        return run_measured(command, directory=self.directory, timeout=self.timeout(), log_stem=self.logs / stem,
                            env=self.server.env)

    def jack_capture(self, width: int) -> tuple:
        path = self.directory / f"jack_capture-{width}.wav"
        # -mc: jack_capture connects nothing itself, so the ramp client's connections stay (with -p, it undoes
        # connections it did not make whenever JACK's graph changes; and it takes fewer than 256 -p arguments).
        command = ["jack_capture", "-c", str(width), "-b", "32", "-d", f"{self.plan['seconds']:g}", "-f", "wav",
                   "-dc", "-mc", str(path)]
        result = self.measured(command, f"jack_capture-{width}")
        counts = _jack_capture_counts(result["stdout_tail"] + result["stderr_tail"])
        result.update(counts, overflow_flags=counts["xruns"])
        return result, _jack_capture_parts(path)

    def sd_recipe(self, width: int) -> tuple:
        path = self.directory / f"sd_recipe-{width}.rf64"
        spec = {"case": "disk", "kind": "sd_recipe", "path": str(path), "device": self.device, "channels": width,
                "frames": self.frames()}
        result = self.measured(child_command("case", json.dumps(spec)), f"sd_recipe-{width}")
        result.update(_worker_json(result))
        return result, [path]

    def record_to(self, width: int) -> tuple:
        path = self.directory / f"record_to-{width}.wav"
        spec = {"case": "disk", "kind": "record_to", "path": str(path), "device": self.device, "channels": width,
                "frames": self.frames(), "hold_s": self.plan["hold_s"],
                "hold_at_s": HOLD_AT * self.plan["seconds"]}
        result = self.measured(child_command("case", json.dumps(spec)), f"record_to-{width}")
        result.update(_worker_json(result), ring_s=RING_S, hold_aimed_s=self.plan["hold_s"])
        return result, [Path(f) for f in result.get("files") or [path]]

    def record(self, width: int) -> tuple:
        path = self.directory / f"record-{width}.wav"
        command = [sys.executable, "-m", "audioring", "record", str(path), "-d", str(self.device), "-c", str(width),
                   "-r", str(RATE), "-t", "int32", "--seconds", f"{self.plan['seconds']:g}"]
        result = self.measured(command, f"record-{width}")
        result.update(_summary_counts(result["stdout_tail"] + result["stderr_tail"]))
        if result["returncode"] not in (0, 3) and "error" not in result:  # 3: it lost frames, and says so
            result["error"] = f"exit status {result['returncode']}: {result['stderr_tail'][-500:]}"
        return result, [path]

    def one(self, recorder: str, width: int) -> dict:
        died = self.ramp.ensure_running()
        if died:
            self.ctx.log(f"  disk: the ramp client had exited ({died[-300:]!r}); restarted it")
        log = JackLog(self.server)
        try:
            result, files = getattr(self, recorder)(width)
        finally:
            jack = log.since()
        result.update(recorder=recorder, channels=width, seconds=self.plan["seconds"], jack=jack)
        try:
            existing = [f for f in files if Path(f).exists()]
            if existing and "error" not in result:
                result["check"] = check_recording(existing)
                result["audio_bytes"] = result["check"]["frames"] * width * SAMPLE_BYTES
                # CPU per second of audio, over what was written while CPU was counted (from START_BYTES on).
                result["audio_s_measured"] = result["bytes_written_measured"] / (width * SAMPLE_BYTES * RATE)
                result["cpu_fraction"] = (result["cpu_s"] / result["audio_s_measured"]
                                          if result["audio_s_measured"] else None)
            elif "error" not in result:
                result["error"] = f"no file written ({', '.join(map(str, files))})"
        finally:
            _delete(files)
        return result

    def dd(self, size: int, flag: str) -> dict:
        path = self.directory / "dd.bin"
        count = max(1, size >> 20)
        command = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}", flag]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout(), check=False)
        finally:
            path.unlink(missing_ok=True)
        found = re.search(r"(\d+) bytes .* copied, ([\d.e+-]+) s", done.stderr)
        result = {"flag": flag, "command": command, "returncode": done.returncode}
        if done.returncode != 0 or not found:
            result["error"] = f"dd failed ({done.returncode}): {done.stderr[-500:]}"
            return result
        result.update(bytes=int(found.group(1)), seconds=float(found.group(2)))
        result["throughput_mb_s"] = result["bytes"] / result["seconds"] / 1e6
        return result

    def drain(self) -> dict:
        path = self.directory / "drain.wav"
        frames = int(self.plan["drain_seconds"] * RATE)
        spec = {"case": "disk", "kind": "drain", "path": str(path), "channels": DRAIN_CHANNELS, "frames": frames}
        result = run_worker(spec, timeout=self.timeout(), env=self.server.env)
        files = [Path(f) for f in result.get("files") or [path]]
        try:
            if "error" not in result:
                result["check"] = check_recording([f for f in files if f.exists()])
                result["audio_bytes"] = frames * DRAIN_CHANNELS * SAMPLE_BYTES
                result["throughput_mb_s"] = result["audio_bytes"] / result["seconds"] / 1e6
        finally:
            _delete(files)
        result.update(channels=DRAIN_CHANNELS, drain_seconds=self.plan["drain_seconds"])
        return result


def _worker_json(result: dict) -> dict:
    """The JSON line a worker printed last, or an error naming what it said."""
    lines = [line for line in result["stdout_tail"].splitlines() if line.startswith("{")]
    if result["returncode"] == 0 and lines:
        return json.loads(lines[-1])
    if "error" in result:
        return {}
    return {"error": f"worker exited with {result['returncode']}: {result['stderr_tail'][-1500:]}"}


def _variant(name: str, base: Path, ctx: RunContext, server, ramp: RampSource, device: int,
             unavailable: dict) -> dict:
    plan = PLAN[ctx.mode]
    widest = max(plan["widths"]) * SAMPLE_BYTES * int(plan["seconds"] * RATE)
    if not base.is_dir():
        refusal = (f"{base} is not a directory" + (f" (from {DISK_DIR_VARIABLE})" if name == "disk" and
                                                   DISK_DIR_VARIABLE in os.environ else ""))
        ctx.log(f"  disk: {name}: refused: {refusal}")
        return {"name": name, "directory": str(base), "runs": [], "dd": [], "refused": refusal}
    variant: dict = {"name": name, **_fs_info(base), "runs": [], "dd": []}
    refusal = _space_refusal(name, variant, widest)
    if refusal:
        variant["refused"] = refusal
        ctx.log(f"  disk: {name}: refused: {refusal}")
        return variant
    directory = Path(tempfile.mkdtemp(prefix="audioring-diskbench-", dir=base))
    logs = Path(tempfile.mkdtemp(prefix="audioring-diskbench-logs-"))
    runner = _Runner(ctx, server, ramp, device, directory, logs)
    try:
        for flag in ("conv=fdatasync", "oflag=direct"):
            variant["dd"].append(runner.dd(widest, flag))
            ctx.log(f"  disk [{name}] dd {flag}: {variant['dd'][-1].get('throughput_mb_s', 0):,.0f} MB/s")
        for width in plan["widths"]:
            for recorder in RECORDERS:
                if recorder in unavailable:
                    continue
                result = runner.one(recorder, width)
                variant["runs"].append(result)
                ctx.log(f"  disk [{name}] {recorder:12} {width:3} ch: " + (
                    f"ERROR {result['error'][:300]}" if "error" in result else
                    f"{result['check']['ramp'].get('frames_lost')} frames lost, flags {result.get('overflow_flags')}, "
                    f"CPU {100 * result['cpu_fraction']:.1f}%, {result.get('throughput_mb_s', 0):.0f} MB/s"))
        if "record_to" not in unavailable:
            variant["drain"] = runner.drain()
            ctx.log(f"  disk [{name}] record_to alone (drain): "
                    + (f"ERROR {variant['drain']['error'][:300]}" if "error" in variant["drain"]
                       else f"{variant['drain']['throughput_mb_s']:,.0f} MB/s"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
    return variant


def _server(stack: contextlib.ExitStack, ctx: RunContext, channels: int, result: dict):
    """The run's JACK server: realtime unless --no-realtime; a refused realtime server is said, then -r is used."""
    if ctx.realtime:
        try:
            server = stack.enter_context(jack_server(RATE, PERIOD, channels, realtime=True))
            result["server"] = SERVER_KINDS[True]
            return server
        except RealtimeUnavailable as error:
            result["realtime_refused"] = str(error)
            ctx.log(f"  disk: realtime jackd refused here ({error}); running on jackd -r")
    result["server"] = SERVER_KINDS[False]
    return stack.enter_context(jack_server(RATE, PERIOD, channels, realtime=False))


def run(ctx: RunContext) -> dict:
    plan = PLAN[ctx.mode]
    unavailable = _unavailable()
    for recorder, reason in unavailable.items():
        ctx.log(f"  disk: {recorder}: not run: {reason}")
    result: dict = {"rate": RATE, "period": PERIOD, "dtype": "int32", "ring_s": RING_S, "hold_at": HOLD_AT, **plan,
                    "filesystems": list(plan["filesystems"]), "widths": list(plan["widths"]),
                    "recorders": list(RECORDERS), "unavailable": unavailable}
    with contextlib.ExitStack() as stack:
        server = _server(stack, ctx, max(plan["widths"]), result)
        result["jackd_scheduling"] = scheduling(server.pid)
        device = run_worker({"case": "disk", "kind": "device"}, timeout=60, env=server.env)
        if "error" in device:
            raise RuntimeError(f"no JACK device: {device['error']}: {device.get('stderr', '')[-500:]}")
        ramp = stack.enter_context(RampSource(server.name, server.env, Path(server.directory) / "ramp.log",
                                              target="PortAudio,jack_capture", encoding="unit", ports="edges"))
        result["variants"] = [_variant(name, base, ctx, server, ramp, device["device"], unavailable)
                              for name, base in _filesystems(plan["filesystems"])]
        result["ramp_restarts"] = ramp.restarts
    return result
