"""One device, many processes: a recording shared by name (``share=``) and read with ``audioring.attach``
in other processes, next to the standard library's recipes for handing audio to another process.

Every process is started with multiprocessing's ``spawn`` (a fresh interpreter, as
on macOS and Windows); every process, shared name and shared-memory segment is
removed at the end of each measurement, failed or not. Latencies and call costs
are given as median, 99th and (with at least 1,000 samples) 99.9th percentile,
nearest rank. Five parts:

1. **Wake-up latency across processes.** A producer process publishes a block of
   480 int32 stereo frames every 10 ms (48 kHz), paced by the clock (``time.sleep``
   to each block's due time); every frame of a block carries
   ``time.monotonic_ns()`` taken just before it is published, as an int64 split
   over the two int32 channels (exact). One reader process, blocked waiting,
   computes at wake-up ``time.monotonic_ns()`` minus that stamp (CLOCK_MONOTONIC is
   one clock for all processes). The reader, for audioring: ``attach(name)`` and
   ``for block in mic.stream(480)`` (a futex wait in the shared memory). Two
   audioring producers: as a recording publishes, an ``AudioRecord(2, 48000,
   48000, dtype="int32", share=...)`` recording from a ``VirtualInput`` that
   delivers nothing (``frames=0``), while ``callback_timer.cpp``'s
   ``ar_paced_callback`` plays the device: it sleeps to each block's due time
   (``clock_nanosleep``), stamps the block and calls the recorder's capture
   callback, exactly as PortAudio's thread would (no Python, no GIL); and from
   Python, as the anchors publish, ``Ring(2, 48000, "int32", share=...)`` and
   ``write(block)``. Anchors,
   same blocks at the same rate: a ``multiprocessing.Queue`` (``put(block)``; the
   reader's ``get()``), and ``multiprocessing.shared_memory.SharedMemory`` plus a
   ``multiprocessing.Condition`` (the producer copies the block into the segment
   and bumps a counter there, then ``notify_all()``, under the condition; the
   reader ``wait()``s under it for the counter to move and copies the block out).
   Every recipe gets a fresh block per publish, allocated before the producer
   sleeps until it is due (the queue pickles it later, in its feeder thread). A
   yardstick, no recipe for blocks: the 8-byte stamp alone sent through a
   ``multiprocessing.Pipe`` (``send_bytes``/``recv_bytes``), the floor of one
   Python process waking another on this machine; and the floor under every
   row, no Python at all: ``wake_floor.cpp``, a C++ process waking another
   through a futex word in shared memory, paced the same way. The producer's own time from
   the stamp to its publishing call's return is reported too (it is part of
   every wake-up), and, block by block, the rest. The reader takes exactly as
   many blocks as are published, then the producer closes. The first 20 blocks
   of a run are not counted; the recipes take turns, a fresh pair of processes
   per run (full: 2 runs of 6 s each).
2. **read(n) in a reader process next to the same read(n) in the producer's
   process**, n = 160, 1,600, 16,000: the producer process records 2 ch float32 at
   48 kHz from a real-time ``VirtualInput`` with ``share=``; a reader process
   ``attach``es. Each process times ``read(n)``, numpy's basic slice ``a[i:j]`` of
   an array of its own (a yardstick: what a view costs in that process) and
   ``is_intact(view)``, statements compiled by ``timeit`` into their loops, in
   batches taking turns, gc off (as the read case); the two processes take turns
   too, a few rounds each (the other waits on a pipe meanwhile). Per-call medians
   and tails over all batches of all rounds.
3. **The producer's callback cost with 0, 1 and 8 reader processes spinning** on
   ``mic.read(4800)`` + ``mic.is_intact(view)``. This process builds an
   ``AudioRecord(2, 48000, 48000, share=..., blocksize=512)`` on a
   ``VirtualInput`` that is never started, and ``callback_timer.cpp`` calls the
   very ``audioring_capture_callback`` PortAudio would, with the recorder's
   ``Capture*`` and a 512-frame block, as the callback case does: no Python, no
   GIL, nothing but the capture path, writing into the shared ring the readers map
   (the least invasive exact way: nothing of audioring is changed or
   re-implemented). Each call is timed alone (two clock reads around it, in
   every sample alike), for the tails; and, as in the callback case, batches of
   1,000 calls timed whole (their per-call median). Eight reader processes are
   started once and spin, or wait paused, as each row asks; the rows take turns,
   round by round: the same callback into a recorder that does not share (a
   private ring, for scale: no futex wake per block), the shared one with no
   reader spinning, 1, 8, and 8 with nothing pinned (not judged: CPU starvation
   mixed in). Otherwise the timing thread is pinned to the first CPU and the
   readers to the others (``sched_setaffinity``), as a realtime audio thread is
   not preempted by readers: those rows measure what readers cost the producer
   through memory, not through a shared CPU (on a 2-CPU machine the readers
   share one CPU, so 8 differ from 1 in little but context switches).
4. **32 ch x 192 kHz fanned out to 4 reader processes**: total CPU (user + system,
   ``/proc/<pid>/stat``, all threads) of the producer and the 4 readers over a
   window after every reader got its first block. Producer: ``AudioRecord(32,
   192000, 96000, headroom=96000, blocksize=1024)`` on a real-time ``VirtualInput``
   ramp (started once every reader is there). audioring: ``share=``, and each
   reader ``attach``es and streams every 1,024-frame block
   (``stream(1024, start=first_frame)``). Anchor: the same producer streams its
   blocks (``rec.stream(1024)``), copies each once (a stream's block is a view the
   ring overwrites; the queue pickles later) and ``put``s the copy on 4
   ``multiprocessing.Queue``s, one per reader process, which ``get()``s. Every
   reader checks the ramp at each block's ends (frame f holds f mod 2**24) and
   counts frames delivered, frames lost (``OverrunError``) and blocks whose ramp
   did not continue.
5. **In process, the ring's writer with reader threads off its cache line**:
   ``ring_write.cpp --readers 0,1,3 --pin`` times ``FrameRing::write`` (mirrored
   memory, 2 ch float32, blocks of 64 and 512 frames) while 0, 1 or 3 native
   threads spin on ``written()`` + ``intact()`` (the counters a reader loads),
   writer pinned to the first CPU, readers round robin on the others; thread CPU
   time per write (the writer's CPU clock), median over repetitions that take
   turns, ``std::memcpy`` of the same blocks for scale. Numbers of the ring as
   built from this checkout.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import queue
import shlex
import time
import traceback
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from harness.context import RunContext
from harness.formatting import fmt_ns
from harness.native import CallbackTimer, run_checked
from harness.timing import Budget, statement, time_together
from reports.share import TITLE, chart, markdown, targets

#: The case as `cases` describes it: measuring here, the report of what was measured (targets judged,
#: Markdown, chart) in its own module, reports/share.py.
__all__ = ["TITLE", "chart", "markdown", "run", "targets"]

SPAWN = multiprocessing.get_context("spawn")
#: Where Linux keeps POSIX shared memory (audioring's names: ``audioring-<uid>-<name>``).
SHM = Path("/dev/shm")

# 1. wake-up latency
WAKE_RATE = 48000
WAKE_BLOCK = 480
#: (runs of each recipe, seconds per run)
WAKE_PLAN = {"full": (2, 6.0), "quick": (1, 1.0)}
WAKE_SKIP = 20
WAKE_RECIPES = ("audioring_callback", "audioring", "mp_queue", "shm_condition", "pipe_stamp", "native_futex")

# 2. read(n) across processes
READ_RATE = 48000
READ_CHANNELS = 2
READ_SIZES = (160, 1600, 16000)
#: (rounds per process, budget per round)
READ_PLAN = {"full": (4, Budget(0.1, 20, 5_000, 20_000)), "quick": (2, Budget(0.02, 10, 1_000, 20_000))}

# 3. the producer's callback with spinning readers
CB_RATE = 48000
CB_CHANNELS = 2
CB_BLOCK = 512
CB_READ = 4800
#: (rounds, seconds per row and round): the rows take turns, round by round
CB_PLAN = {"full": (5, 0.2), "quick": (2, 0.1)}
CB_CHUNK = 1000
CB_SPINNERS = 8
#: (key, label, readers spinning, pinned, shared)
CB_CONFIGS = (("private", "not shared (a private ring)", 0, True, False),
              ("none", "shared, no reader", 0, True, True),
              ("one", "shared, 1 reader", 1, True, True),
              ("eight", "shared, 8 readers", CB_SPINNERS, True, True),
              ("eight_unpinned", "shared, 8 readers, nothing pinned", CB_SPINNERS, False, True))

# 4. fan-out
FAN_CHANNELS = 32
FAN_RATE = 192000
FAN_BLOCK = 1024
FAN_READERS = 4
FAN_SECONDS = {"full": 10.0, "quick": 1.0}
FAN_WARMUP_S = 0.5
FAN_RECIPES = ("audioring", "mp_queues")

# 5. ring_write with reader threads
RW_ARGS = ["--channels", "2", "--blocks", "64,512", "--methods", "memcpy,ring_memfd", "--readers", "0,1,3", "--pin"]
RW_REPS = {"full": 101, "quick": 7}


# ---- processes: starting, waiting, cleaning up ------------------------------------------------------

_names = itertools.count()


def _report(results, role: str, **data) -> None:
    results.put({"role": role, "pid": os.getpid(), **data})


def _failed(results, role: str, error: BaseException) -> None:
    results.put({"role": role, "pid": os.getpid(), "error": f"{type(error).__name__}: {error}",
                 "traceback": traceback.format_exc()[-2000:]})


class _Run:
    """The spawned processes, shared names and segments of one measurement; all gone on exit, whatever happened.

    Children report on ``results`` (dicts with ``role``; an ``error`` key if they failed).
    """

    def __init__(self) -> None:
        self.processes: list = []
        self.names: list = []
        self.segments: list = []
        self.results = SPAWN.Queue()
        self._early: list = []

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # For all of them together: they were told to end (a failure: others may wait for it forever).
        deadline = time.monotonic() + (10 if exc_info[0] is None else 1)
        for p in self.processes:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in self.processes:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        for segment in self.segments:
            segment.close()
            try:
                segment.unlink()
            except FileNotFoundError:
                pass
        for name in self.names:  # a producer that was killed leaves its name behind
            leftover = SHM / f"audioring-{os.geteuid()}-{name}"
            if leftover.exists():
                leftover.unlink()
        self.results.close()
        self.results.join_thread()

    def name(self, label: str) -> str:
        name = f"bench-{os.getpid()}-{next(_names)}-{label}"
        self.names.append(name)
        return name

    def segment(self, size: int) -> SharedMemory:
        segment = SharedMemory(create=True, size=size)
        self.segments.append(segment)
        return segment

    def start(self, target: Callable, *args) -> multiprocessing.process.BaseProcess:
        process = SPAWN.Process(target=target, args=args, daemon=True)
        process.start()
        self.processes.append(process)
        return process

    def _take(self, timeout: float) -> Optional[dict]:
        try:
            item = self.results.get(timeout=timeout)
        except queue.Empty:
            return None
        if "error" in item:
            raise RuntimeError(f"{item['role']} (pid {item['pid']}) failed: {item['error']}\n{item['traceback']}")
        return item

    def _check_alive(self) -> None:
        for p in self.processes:
            if p.exitcode not in (None, 0):
                raise RuntimeError(f"process {p.name} (pid {p.pid}) exited with {p.exitcode}")

    def wait(self, event, what: str, timeout: float = 60.0) -> None:
        """Wait for `event`; raise at once if a child failed or died meanwhile."""
        deadline = time.monotonic() + timeout
        while not event.wait(0.02):
            item = self._take(0.02)
            if item is not None:
                self._early.append(item)
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout:g} s")

    def collect(self, count: int, what: str, timeout: float) -> list:
        """`count` reports of the children (raising if one failed)."""
        got, self._early = self._early, []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            item = self._take(0.2)
            if item is not None:
                got.append(item)
                continue
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(got)} of {count} reports of {what} within {timeout:g} s")
        return got

    def request(self, conn, message, what: str, timeout: float = 120.0):
        """Send `message` on a pipe to a child and wait for its answer (raising if it failed)."""
        if message is not ...:
            conn.send(message)
        deadline = time.monotonic() + timeout
        while not conn.poll(0.05):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer from {what} within {timeout:g} s")
        answer = conn.recv()
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(f"{what} failed: {answer['error']}\n{answer.get('traceback', '')}")
        return answer


def _attach(name: str, timeout: float = 30.0):
    """attach(name) once it is shared."""
    import audioring

    deadline = time.monotonic() + timeout
    while True:
        try:
            return audioring.attach(name)
        except FileNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _stats(values) -> dict:
    """Median and tails (nearest rank) of nanoseconds; p99.9 only from 1,000 samples on."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    n = len(data)
    if n == 0:
        return {"samples": 0}

    def rank(q: float) -> float:
        return float(data[min(n - 1, int(round(q * (n - 1))))])

    found = {"median_ns": float(np.median(data)), "p90_ns": rank(0.90), "p99_ns": rank(0.99),
             "min_ns": float(data[0]), "max_ns": float(data[-1]), "samples": n}
    if n >= 1000:
        found["p999_ns"] = rank(0.999)
    return found


# ---- 1. wake-up latency across processes ---------------------------------------------------------------


def _stamp(block: np.ndarray, ns: int) -> np.ndarray:
    block.view(np.int64)[:] = ns  # each frame: the int64 split over the two int32 channels
    return block


def _stamp_of(block: np.ndarray) -> int:
    return int(block[-1].view(np.int64)[0])


def _segment_arrays(segment: SharedMemory) -> tuple:
    """The condition recipe's segment: [blocks published, unused] (int64), then one block."""
    header = np.ndarray((2,), dtype=np.int64, buffer=segment.buf)
    data = np.ndarray((WAKE_BLOCK, 2), dtype=np.int32, buffer=segment.buf, offset=16)
    return header, data


def _wake_producer(recipe: str, name: str, channel: dict, blocks: int, ready, go, release, results) -> None:
    role = f"{recipe} producer"
    ring = segment = header = data = None
    period = WAKE_BLOCK * 1_000_000_000 // WAKE_RATE
    try:
        import audioring

        if recipe == "audioring_callback":
            # Recording, so readers' streams run, from an input that delivers nothing: the timer plays the device.
            ring = audioring.AudioRecord(2, WAKE_RATE, WAKE_RATE, dtype="int32", share=name,
                                         device=audioring.VirtualInput("ramp", frames=0), blocksize=WAKE_BLOCK)
            ring.start_recording()
            timer = CallbackTimer(Path(channel["timer"]), WAKE_RATE)
            ready.set()
            go.wait()
            played = timer.paced_calls(audioring._core.capture_callback_address(), ring._capture.address,
                                       WAKE_BLOCK, blocks, period)
            _report(results, role, blocks=blocks, late=played["late"], publishing_ns=played["publish_ns"],
                    stamps=played["stamps"])
            release.wait(60)
            return
        if recipe == "audioring":
            ring = audioring.Ring(2, WAKE_RATE, "int32", share=name, sampling_rate=WAKE_RATE)
            publish = ring.write
        elif recipe == "mp_queue":
            publish = channel["queue"].put
        elif recipe == "pipe_stamp":
            sender = channel["pipe"][1]

            def publish(block: np.ndarray) -> None:
                sender.send_bytes(block[-1].tobytes())  # the stamp alone: 8 bytes

        else:
            segment = SharedMemory(name=channel["segment"])
            header, data = _segment_arrays(segment)
            condition = channel["condition"]

            def publish(block: np.ndarray) -> None:
                with condition:
                    data[:] = block
                    header[0] += 1
                    condition.notify_all()

        ready.set()
        go.wait()
        due = time.monotonic_ns() + period
        late = 0
        publishing = []  # ns from the stamp to publish() returning: the producer's own cost of a block
        stamps = []
        for _ in range(blocks):
            block = np.empty((WAKE_BLOCK, 2), dtype=np.int32)  # a fresh block, made before it is due
            wait = due - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            else:
                late += 1
            stamp = time.monotonic_ns()
            publish(_stamp(block, stamp))
            publishing.append(time.monotonic_ns() - stamp)
            stamps.append(stamp)
            due += period
        _report(results, role, blocks=blocks, late=late, publishing_ns=publishing, stamps=stamps)
        # The reader takes exactly `blocks` blocks; the producer closes only once the harness has its report.
        release.wait(60)
    except BaseException as error:  # noqa: BLE001 - reported to the harness
        _failed(results, role, error)
    finally:
        if ring is not None:
            ring.close()
        if segment is not None:
            del header, data
            segment.close()


def _wake_reader(recipe: str, name: str, channel: dict, blocks: int, listening, results) -> None:
    role = f"{recipe} reader"
    latencies: list = []  # ns from the stamp to the reader holding the block
    stamps: list = []
    missed = 0
    try:
        if recipe in ("audioring", "audioring_callback"):
            with _attach(name) as mic:
                stream = mic.stream(WAKE_BLOCK, start=mic.frames_written)
                listening.set()
                for block in stream:
                    now = time.monotonic_ns()
                    stamps.append(_stamp_of(block))
                    latencies.append(now - stamps[-1])
                    if len(latencies) == blocks:
                        break
        elif recipe == "mp_queue":
            channel_queue = channel["queue"]
            listening.set()
            for _ in range(blocks):
                block = channel_queue.get()
                now = time.monotonic_ns()
                stamps.append(_stamp_of(block))
                latencies.append(now - stamps[-1])
        elif recipe == "pipe_stamp":
            receiver = channel["pipe"][0]
            listening.set()
            for _ in range(blocks):
                stamp = receiver.recv_bytes()
                now = time.monotonic_ns()
                stamps.append(int(np.frombuffer(stamp, dtype=np.int64)[0]))
                latencies.append(now - stamps[-1])
        else:
            segment = SharedMemory(name=channel["segment"])
            header, data = _segment_arrays(segment)
            condition = channel["condition"]
            seen = 0
            listening.set()
            while seen < blocks:
                with condition:
                    while header[0] == seen:
                        condition.wait()
                    missed += int(header[0]) - seen - 1
                    seen = int(header[0])
                    block = data.copy()
                now = time.monotonic_ns()
                stamps.append(_stamp_of(block))
                latencies.append(now - stamps[-1])
            del header, data
            segment.close()
        _report(results, role, latencies_ns=latencies, stamps=stamps, missed=missed)
    except BaseException as error:  # noqa: BLE001 - reported to the harness
        listening.set()
        _failed(results, role, error)


def _wake_floor_run(program: Path, blocks: int) -> dict:
    """wake_floor.cpp's run, in the shape of _wake_run's."""
    period_us = WAKE_BLOCK * 1_000_000 // WAKE_RATE
    got = json.loads(run_checked([str(program), "--blocks", str(blocks), "--period-us", str(period_us)],
                                 "the native wake-up floor").stdout)
    counted = slice(WAKE_SKIP, None)
    wake, publish = got["wake_ns"], got["publish_ns"]
    return {"latencies": [w for w in wake[counted] if w > 0], "missed": sum(1 for w in wake if w == 0),
            "published": blocks, "received": sum(1 for w in wake if w > 0), "late": 0,
            "publishing": publish[counted],
            "after_publish": [w - p for w, p in zip(wake[counted], publish[counted]) if w > 0]}


def _wake_run(recipe: str, seconds: float, ctx: RunContext) -> dict:
    blocks = int(seconds * WAKE_RATE / WAKE_BLOCK)
    if recipe == "native_futex":
        return _wake_floor_run(ctx.helper("wake_floor"), blocks)
    timer = ctx.helper("callback_timer")
    with _Run() as run:
        name = run.name("wake")
        channel: dict = {}
        if recipe == "audioring_callback":
            channel["timer"] = str(timer)
        elif recipe == "mp_queue":
            channel["queue"] = SPAWN.Queue()
        elif recipe == "pipe_stamp":
            channel["pipe"] = SPAWN.Pipe(duplex=False)
        elif recipe == "shm_condition":
            channel.update(segment=run.segment(16 + WAKE_BLOCK * 8).name, condition=SPAWN.Condition())
        ready, listening, go, release = SPAWN.Event(), SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
        run.start(_wake_producer, recipe, name, channel, blocks, ready, go, release, run.results)
        run.wait(ready, "producer ready")
        run.start(_wake_reader, recipe, name, channel, blocks, listening, run.results)
        run.wait(listening, "reader listening")
        time.sleep(0.1)  # the reader is blocked waiting by now; the first blocks are not counted anyway
        go.set()
        got = {item["role"].split()[-1]: item for item in run.collect(2, "the wake-up run", seconds + 60)}
        release.set()
    reader, producer = got["reader"], got["producer"]
    publishing = dict(zip(producer["stamps"], producer["publishing_ns"]))
    counted = slice(WAKE_SKIP, None)
    return {"latencies": reader["latencies_ns"][counted], "missed": reader["missed"], "published": producer["blocks"],
            "received": len(reader["latencies_ns"]), "late": producer["late"],
            "publishing": producer["publishing_ns"][counted],
            # the reader's part: from the producer's publishing call returning to the reader holding the block
            "after_publish": [lat - publishing[stamp] for lat, stamp in
                              zip(reader["latencies_ns"][counted], reader["stamps"][counted])]}


def _wake(ctx: RunContext) -> dict:
    runs, seconds = WAKE_PLAN[ctx.mode]
    pooled = {r: {"latencies": [], "publishing": [], "after_publish": [], "missed": 0, "published": 0,
                  "received": 0, "late": 0}
              for r in WAKE_RECIPES}
    for k in range(runs):
        for j in range(len(WAKE_RECIPES)):
            recipe = WAKE_RECIPES[(j + k) % len(WAKE_RECIPES)]  # a different one goes first each round
            got = _wake_run(recipe, seconds, ctx)
            for key in ("missed", "published", "received", "late"):
                pooled[recipe][key] += got[key]
            pooled[recipe]["latencies"] += got["latencies"]
            pooled[recipe]["publishing"] += got["publishing"]
            pooled[recipe]["after_publish"] += got["after_publish"]
            s = _stats(got["latencies"])
            ctx.log(f"  share: wake {recipe:13} run {k + 1}: median {fmt_ns(s.get('median_ns'))}, p99 "
                    f"{fmt_ns(s.get('p99_ns'))}, max {fmt_ns(s.get('max_ns'))} ({s['samples']} blocks, "
                    f"{got['missed']} missed)")
    results = []
    for recipe in WAKE_RECIPES:
        p = pooled[recipe]
        results.append({"recipe": recipe, **_stats(p["latencies"]), "publish": _stats(p["publishing"]),
                        "after_publish": _stats(p["after_publish"]),
                        **{k: p[k] for k in ("missed", "published", "received", "late")}})
    return {"rate": WAKE_RATE, "block_frames": WAKE_BLOCK, "runs": runs, "seconds": seconds,
            "skipped_blocks": WAKE_SKIP, "results": results}


# ---- 2. read(n) in a reader process and in the producer's process ----------------------------------


def _read_batches(reader) -> dict:
    array = np.ones((READ_RATE, READ_CHANNELS), dtype=np.float32)
    batches = {}
    for n in READ_SIZES:
        batches[f"read {n}"] = statement("read(n)", {"read": reader.read, "n": n})
        batches[f"slice {n}"] = statement("a[i:j]", {"a": array, "i": len(array) - n, "j": len(array)})
    batches["is_intact 1600"] = statement("is_intact(view)", {"is_intact": reader.is_intact,
                                                              "view": reader.read(1600)})
    return batches


def _read_side(side: str, name: str, conn) -> None:
    rec = None
    try:
        import audioring

        if side == "producer":
            rec = audioring.AudioRecord(READ_CHANNELS, READ_RATE, READ_RATE, device=audioring.VirtualInput("sine"),
                                        blocksize=512, share=name)
            rec.start_recording()
            while rec.frames_recorded < max(READ_SIZES):
                time.sleep(0.01)
        else:
            rec = _attach(name)
        batches = _read_batches(rec)
        conn.send("ready")
        while True:
            budget = conn.recv()
            if budget is None:
                break
            measured = time_together(batches, Budget(**budget), keep=True)
            conn.send({key: m["per_call_ns"] for key, m in measured.items()})
        conn.send("done")
    except BaseException as error:  # noqa: BLE001 - reported to the harness
        conn.send({"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]})
    finally:
        if rec is not None:
            rec.close()


def _read(ctx: RunContext) -> dict:
    rounds, budget = READ_PLAN[ctx.mode]
    samples: dict = {"producer": {}, "reader": {}}
    with _Run() as run:
        name = run.name("read")
        conns = {}
        for side in ("producer", "reader"):
            mine, theirs = SPAWN.Pipe()
            run.start(_read_side, side, name, theirs)
            conns[side] = mine
            run.request(mine, ..., f"the {side} process starting", timeout=60)
        for k in range(rounds):
            for side in (("producer", "reader") if k % 2 == 0 else ("reader", "producer")):
                got = run.request(conns[side], budget.as_dict(), f"the {side} process timing reads")
                for key, values in got.items():
                    samples[side].setdefault(key, []).extend(values)
        for side in ("reader", "producer"):  # the reader detaches before the producer closes
            run.request(conns[side], None, f"the {side} process ending")
    results = []
    for side, by_key in samples.items():
        for key, values in by_key.items():
            statement_name, frames = key.split()
            results.append({"side": side, "statement": statement_name, "frames": int(frames), **_stats(values)})
    rows = {(r["side"], r["statement"], r["frames"]): r for r in results}
    ctx.log("  share: read(n) medians, producer / reader process: " + ", ".join(
        f"n = {n}: {fmt_ns(rows[('producer', 'read', n)]['median_ns'])} / "
        f"{fmt_ns(rows[('reader', 'read', n)]['median_ns'])}" for n in READ_SIZES))
    return {"rate": READ_RATE, "channels": READ_CHANNELS, "sizes": list(READ_SIZES), "rounds": rounds,
            "budget": budget.as_dict(), "results": results}


# ---- 3. the producer's callback with spinning reader processes -------------------------------------------


def _spinner(name: str, ready, spin, stop, results) -> None:
    """Spin on read() + is_intact() while `spin` is set (else wait for it), until `stop`."""
    try:
        with _attach(name) as mic:
            read, is_intact = mic.read, mic.is_intact
            view = read(CB_READ)
            is_intact(view)
            ready.set()
            loops = 0
            spinning = 0.0
            while not stop.is_set():
                if not spin.is_set():
                    spin.wait(0.05)
                    continue
                started = time.perf_counter()
                for _ in range(1000):
                    view = read(CB_READ)
                    is_intact(view)
                loops += 1000
                spinning += time.perf_counter() - started
        _report(results, "spinner", loops=loops, seconds=spinning)
    except BaseException as error:  # noqa: BLE001 - reported to the harness
        ready.set()
        _failed(results, "spinner", error)


def _callback(ctx: RunContext) -> dict:
    import audioring

    timer = ctx.callback_timer(CB_RATE)
    rounds, seconds = CB_PLAN[ctx.mode]
    block = (0.1 * np.random.default_rng(1).standard_normal((CB_BLOCK, CB_CHANNELS))).astype(np.float32)
    everywhere = set(os.sched_getaffinity(0))
    pin = len(everywhere) >= 2
    producer_cpus = {min(everywhere)} if pin else everywhere
    reader_cpus = everywhere - producer_cpus if pin else everywhere
    singles: dict = {key: [] for key, *_ in CB_CONFIGS}
    batches: dict = {key: [] for key, *_ in CB_CONFIGS}
    with _Run() as run:
        name = run.name("callback")
        shared = audioring.AudioRecord(CB_CHANNELS, CB_RATE, CB_RATE, device=audioring.VirtualInput("ramp"),
                                       blocksize=CB_BLOCK, share=name)
        private = audioring.AudioRecord(CB_CHANNELS, CB_RATE, CB_RATE, device=audioring.VirtualInput("ramp"),
                                        blocksize=CB_BLOCK)
        spinners = [(SPAWN.Event(), SPAWN.Event(), SPAWN.Event()) for _ in range(CB_SPINNERS)]  # ready, spin, stop
        try:
            processes = [run.start(_spinner, name, ready, spin, stop, run.results) for ready, spin, stop in spinners]
            for ready, _, _ in spinners:
                run.wait(ready, "a reader ready to spin")
            address = audioring._core.capture_callback_address()
            for k in range(rounds):
                for j in range(len(CB_CONFIGS)):
                    key, _, readers, pinned, is_shared = CB_CONFIGS[(j + k) % len(CB_CONFIGS)]
                    for i, (_, spin, _) in enumerate(spinners):
                        if i < readers:
                            spin.set()
                        else:
                            spin.clear()
                    for process in processes:
                        os.sched_setaffinity(process.pid, reader_cpus if pinned else everywhere)
                    os.sched_setaffinity(0, producer_cpus if pinned else everywhere)
                    time.sleep(0.03)  # spinners asked to pause finish their loop of 1,000
                    capture = (shared if is_shared else private)._capture.address
                    deadline = time.perf_counter() + seconds
                    while time.perf_counter() < deadline:
                        singles[key].append(timer.single_calls(address, capture, block, CB_CHUNK))
                        batches[key].append(timer.batch(address, capture, block, CB_CHUNK) / CB_CHUNK)
                    os.sched_setaffinity(0, everywhere)
            verified = all(bool(np.array_equal(r.read(CB_BLOCK), block)) for r in (shared, private))
        finally:
            os.sched_setaffinity(0, everywhere)
            for _, spin, stop in spinners:
                stop.set()
                spin.set()
            shared.close()
            private.close()
        spun = run.collect(len(run.processes), "the spinning readers", 60)
    results = []
    for key, label, readers, pinned, is_shared in CB_CONFIGS:
        row = {"key": key, "label": label, "readers": readers, "pinned": pinned and pin, "shared": is_shared,
               **_stats(np.concatenate(singles[key])), "batch_median_ns": float(np.median(batches[key])),
               "batches": len(batches[key])}
        results.append(row)
        ctx.log(f"  share: callback, {label:34}: per call median {fmt_ns(row['median_ns'])}, p99 "
                f"{fmt_ns(row['p99_ns'])}, p99.9 {fmt_ns(row.get('p999_ns'))}; batches "
                f"{fmt_ns(row['batch_median_ns'])} per call")
    return {"rate": CB_RATE, "channels": CB_CHANNELS, "block_frames": CB_BLOCK, "read_frames": CB_READ,
            "rounds": rounds, "seconds": seconds, "chunk": CB_CHUNK, "cpus": sorted(everywhere),
            "producer_cpus": sorted(producer_cpus), "reader_cpus": sorted(reader_cpus), "pinning": pin,
            "verified": verified, "spinner_reads_per_s": [s["loops"] / s["seconds"] for s in spun if s["seconds"]],
            "results": results}


# ---- 4. 32 ch x 192 kHz to 4 reader processes ------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fan_producer(recipe: str, name: str, queues: list, ready, go, stop, release, results) -> None:
    role = f"{recipe} producer"
    rec = None
    try:
        import audioring

        rec = audioring.AudioRecord(FAN_CHANNELS, FAN_RATE, FAN_RATE // 2, headroom=FAN_RATE // 2,
                                    device=audioring.VirtualInput("ramp"), blocksize=FAN_BLOCK,
                                    share=name if recipe == "audioring" else None)
        ready.set()
        go.wait()
        rec.start_recording()
        blocks = 0
        if recipe == "audioring":
            stop.wait()
        else:
            for block in rec.stream(FAN_BLOCK, timeout=10):
                copy = block.copy()
                for q in queues:
                    q.put(copy)
                blocks += 1
                if stop.is_set():
                    break
            for q in queues:
                q.put(None)
        rec.stop()  # audioring: the readers' streams drain what is left, then end
        _report(results, role, frames_recorded=rec.frames_recorded, frames_sent=blocks * FAN_BLOCK,
                overflows=rec.overflows)
        release.wait(60)  # closed once the harness has every report (a close unshares the name)
    except BaseException as error:  # noqa: BLE001 - reported to the harness
        _failed(results, role, error)
    finally:
        if rec is not None:
            rec.close()


def _fan_reader(recipe: str, name: str, source, attached, streaming, results) -> None:
    role = f"{recipe} reader"
    try:
        import audioring

        frames = lost = wrong = 0
        expected = 0  # the ramp's value of the next frame: frames since the recording's start

        def take(block: np.ndarray) -> None:
            nonlocal frames, wrong, expected
            n = len(block)
            if block[0, 0] != expected % 2**24 or block[-1, 0] != (expected + n - 1) % 2**24:
                wrong += 1
            expected += n
            frames += n
            if frames == n:
                streaming.set()

        if recipe == "audioring":
            with _attach(name) as mic:
                attached.set()
                while not mic.recording:
                    time.sleep(0.002)
                first = mic.first_frame
                stream = iter(mic.stream(FAN_BLOCK, start=first, timeout=10))
                while True:
                    try:
                        block = next(stream)
                    except StopIteration:
                        break
                    except audioring.OverrunError as error:
                        lost += error.frames_lost
                        expected = error.position - first
                        continue
                    take(block)
        else:
            attached.set()
            while True:
                block = source.get()
                if block is None:
                    break
                take(block)
        _report(results, role, frames=frames, lost=lost, wrong_blocks=wrong)
    except BaseException as error:  # noqa: BLE001 - reported to the harness
        attached.set()
        streaming.set()
        _failed(results, role, error)


def _fan_run(recipe: str, seconds: float) -> dict:
    with _Run() as run:
        name = run.name("fanout")
        queues = [SPAWN.Queue() for _ in range(FAN_READERS)] if recipe == "mp_queues" else []
        ready, go, stop, release = SPAWN.Event(), SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
        producer = run.start(_fan_producer, recipe, name, queues, ready, go, stop, release, run.results)
        run.wait(ready, "producer ready")
        attached = [SPAWN.Event() for _ in range(FAN_READERS)]
        streaming = [SPAWN.Event() for _ in range(FAN_READERS)]
        readers = [run.start(_fan_reader, recipe, name, queues[i] if queues else None, attached[i], streaming[i],
                             run.results) for i in range(FAN_READERS)]
        for event in attached:
            run.wait(event, "a reader attached")
        go.set()
        for event in streaming:
            run.wait(event, "a reader's first block")
        time.sleep(FAN_WARMUP_S)
        pids = [producer.pid] + [r.pid for r in readers]
        cpu0, wall0 = [_cpu_seconds(pid) for pid in pids], time.perf_counter()
        time.sleep(seconds)
        cpu1, wall1 = [_cpu_seconds(pid) for pid in pids], time.perf_counter()
        stop.set()
        got = run.collect(1 + FAN_READERS, "the fan-out run", 120)
        release.set()
    cpu = [b - a for a, b in zip(cpu0, cpu1)]
    wall = wall1 - wall0
    by_pid = {item["pid"]: item for item in got}
    producer_report = by_pid[producer.pid]
    return {"recipe": recipe, "wall_s": wall, "producer_cpu_s": cpu[0], "readers_cpu_s": cpu[1:],
            "total_cpu_s": sum(cpu), "total_core_fraction": sum(cpu) / wall,
            "frames_recorded": producer_report["frames_recorded"], "frames_sent": producer_report["frames_sent"],
            "overflows": producer_report["overflows"],
            "readers": [{k: by_pid[r.pid][k] for k in ("frames", "lost", "wrong_blocks")} for r in readers]}


def _fanout(ctx: RunContext) -> dict:
    seconds = FAN_SECONDS[ctx.mode]
    results = []
    for recipe in FAN_RECIPES:
        r = _fan_run(recipe, seconds)
        results.append(r)
        ctx.log(f"  share: fan-out {recipe:9}: {100 * r['total_core_fraction']:.1f}% of a core in all (producer "
                f"{100 * r['producer_cpu_s'] / r['wall_s']:.1f}%), frames per reader "
                f"{[x['frames'] for x in r['readers']]}, lost {[x['lost'] for x in r['readers']]}")
    return {"channels": FAN_CHANNELS, "rate": FAN_RATE, "block_frames": FAN_BLOCK, "readers": FAN_READERS,
            "seconds": seconds, "warmup_s": FAN_WARMUP_S, "results": results}


# ---- 5. the ring's writer with native reader threads ---------------------------------------------------


def _ring_write(ctx: RunContext) -> dict:
    program = ctx.helper("ring_write")
    command = [str(program), *RW_ARGS, "--reps", str(RW_REPS[ctx.mode])]
    output = run_checked(command, "ring_write")
    data = json.loads(output.stdout)
    data["command"] = shlex.join(command)
    for r in data["results"]:
        if r["method"] == "ring_memfd":
            ctx.log(f"  share: ring_write {r['block_frames']:4} frames, {r['readers']} reader threads: "
                    f"{r['cpu_ns_per_write_median']:.0f} ns per write (CPU)")
    return data


# ---- the case ------------------------------------------------------------------------------------------------


def run(ctx: RunContext) -> dict:
    result: dict = {}
    failed = []
    for part, measure in (("wake", _wake), ("read", _read), ("callback", _callback), ("fanout", _fanout),
                          ("ring_write", _ring_write)):
        started = time.perf_counter()
        try:
            result[part] = measure(ctx)
        except Exception as error:  # noqa: BLE001 - one failing part must not lose the others' numbers
            ctx.log(traceback.format_exc())
            result[part] = {"error": f"{type(error).__name__}: {error}"}
            failed.append(part)
        result[part]["elapsed_s"] = round(time.perf_counter() - started, 1)
    if failed:  # the case failed (run.py's exit status says so); the JSON keeps every part's numbers
        result["error"] = "; ".join(f"part {p}: {result[p]['error']}" for p in failed)
    return result
