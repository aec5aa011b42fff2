"""asyncio consumers on JACK: how soon an awaiting consumer has a block, and what waiting consumers cost.

Recipes side by side, each in a fresh process (``worker.py``) on one event loop, recording stereo float32 from a
JACK dummy server at 48 kHz (period 256), as the other JACK cases do:

* **audioring** ``astream()``: ``async for block in rec.astream(...)`` on an ``AudioRecord`` (native callback).
  A native thread per recorder rings the loop's eventfd when a waited-for block is complete.
* **sounddevice + call_soon_threadsafe**, the usual recipe: an ``InputStream`` whose Python callback calls
  ``loop.call_soon_threadsafe(queue.put_nowait, indata.copy())``; the consumer awaits ``queue.get()``.
* (idle cost only) **audioring stream() in threads**: the synchronous ``stream()`` driven through
  ``loop.run_in_executor``, a thread per consumer: the usual way to await a blocking iterator.

**Wake latency**: for every 256-frame block of a SECONDS run (after WARMUP_S), the time from the entry of the
callback that publishes it to the moment the awaiting consumer task has it. audioring publishes inside its native
callback, a ``memcpy`` after entry; ``publish_probe.cpp``, a shim PortAudio calls instead (it calls the real
callback), notes the callback's entry and return, and the consumer looks its block's last frame up there. The
return is not the publish: after publishing, the callback rings the ring's doorbell (a futex wake of the watcher
thread), and without realtime scheduling the woken threads may run before the callback returns (the whole wake
can complete first). So audioring's latency is timed from the entry, an upper bound of publish to consumer.
The recipe's is timed from its Python callback's first line (after cffi took the GIL: in the recipe's favour);
its publish (``call_soon_threadsafe``) to consumer is reported too. Both clocks are CLOCK_MONOTONIC. Also the
callback's own time, entry to return: what each recipe costs the audio thread. audioring's watcher thread runs
SCHED_BATCH, so that the doorbell's wake never preempts the audio thread inside its callback; a third row switches
it to SCHED_OTHER (``os.sched_setscheduler`` on the thread) to show what that trades: without realtime scheduling,
a woken SCHED_OTHER watcher preempts the audio thread (a longer callback), while a SCHED_BATCH one waits for a
busy core's current task to yield (a longer tail of wake latencies when other processes keep both cores busy).

**Idle cost**: 100 consumers on the loop, the process's CPU (``time.process_time``, all threads) over IDLE_S:
while **no audio arrives** (jackd stopped with SIGSTOP for the measurement, continued after), and while audio
flows but each consumer waits for a whole second of it (``astream(48000)``; the recipe's consumers collect a
second of queued blocks; the threads' ``stream(48000)``), next to the recorder alone.

Targets: audioring's wake latency p99 under 1 ms; 100 waiting ``astream()`` consumers use no measurable CPU while
no audio arrives (under 0.1% of one core).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from harness.context import RunContext
from harness.formatting import fmt_ns
from harness.servers import JackLog, jack_server
from harness.timing import summarize
from harness.workers import run_worker
from reports.asyncio import TITLE, markdown, percent, targets

__all__ = ["TITLE", "markdown", "run", "targets", "worker"]

RATE = 48000
PERIOD = 256
CHANNELS = 2
WARMUP_S = 0.5
SECONDS = {"full": 20.0, "quick": 1.0}
IDLE_S = {"full": 5.0, "quick": 0.5}
CONSUMERS = 100

LATENCY_RECIPES = ("audioring", "audioring_other", "sd_asyncio")
IDLE_RECIPES = ("audioring", "sd_asyncio", "audioring_threads")


# ---- the worker (a fresh process per recipe and part) -----------------------------------------------------


def worker(spec: dict) -> dict:
    import asyncio

    import sounddevice as sd

    from harness.servers import jack_device

    device = jack_device(sd)
    part = _latency if spec["part"] == "latency" else _idle
    return asyncio.run(part(spec, device))


def _open_probed_recorder(device: int, probe_path: str):
    """An AudioRecord whose native callback PortAudio calls through publish_probe (see the module docstring)."""
    import ctypes

    from audioring import AudioRecord, _core

    probe = ctypes.CDLL(probe_path)
    probe.ar_probe_set_callback.argtypes = [ctypes.c_void_p]
    probe.ar_probe_calls.restype = ctypes.c_ulonglong
    probe.ar_probe_entry.argtypes = [ctypes.c_ulonglong] + [ctypes.POINTER(ctypes.c_longlong)] * 3
    probe.ar_probe_set_callback(_core.capture_callback_address())
    shim = ctypes.cast(probe.ar_probe_callback, ctypes.c_void_p).value
    real = _core.capture_callback_address
    _core.capture_callback_address = lambda: shim  # what the PortAudio source hands PortAudio, at open
    try:
        rec = AudioRecord(CHANNELS, RATE, RATE, device=device)
    finally:
        _core.capture_callback_address = real
    assert rec.driver == "native", rec.driver
    return rec, probe


def _probe_entries(probe) -> tuple[list, list, list]:
    import ctypes

    entered, published, frames = [], [], []
    values = [ctypes.c_longlong() for _ in range(3)]
    for index in range(probe.ar_probe_calls()):
        probe.ar_probe_entry(index, *(ctypes.byref(v) for v in values))
        entered.append(values[0].value)
        published.append(values[1].value)
        frames.append(values[2].value)
    return entered, published, frames


def _watcher_to_sched_other() -> bool:
    """Switch this process's watcher thread (named ``audioring-watch``) from SCHED_BATCH to SCHED_OTHER.

    Returns False if the thread does not exist yet (it starts with the first wait that has to wait).
    """
    for tid in os.listdir("/proc/self/task"):
        try:
            if Path(f"/proc/self/task/{tid}/comm").read_text().strip() == "audioring-watch":
                os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
                return True
        except OSError:
            continue
    return False


async def _latency(spec: dict, device: int) -> dict:
    import asyncio
    import bisect

    seconds = spec["seconds"]
    wake_ns: list[int] = []  # the callback's entry -> the consumer has the block
    callback_ns: list[int] = []  # the callback's own time, entry -> return
    extra: dict = {}
    if spec["recipe"] in ("audioring", "audioring_other"):
        rec, probe = _open_probed_recorder(device, spec["probe"])
        probe.ar_probe_reset()
        received: list[tuple[int, int]] = []  # (frames up to the block's end, the consumer's ns)
        with rec:
            stop_at = time.monotonic() + WARMUP_S + seconds
            async for block in rec.astream(PERIOD, timeout=5):
                now = time.monotonic_ns()
                received.append((rec.frame_of(block) + PERIOD - rec.first_frame, now))
                if spec["recipe"] == "audioring_other" and "switched_at_block" not in extra and \
                        _watcher_to_sched_other():
                    extra["switched_at_block"] = len(received)  # within the warm-up
                if time.monotonic() > stop_at:
                    break
            flags = rec.overflows
        entered, returned, frames = _probe_entries(probe)  # the stream is closed: every entry is final
        for end, now in received:
            call = bisect.bisect_left(frames, end)  # the callback that delivered the block's last frame
            wake_ns.append(now - entered[call])
            callback_ns.append(returned[call] - entered[call])
    else:
        import sounddevice as sd

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        overflows = 0
        publish_ns: list[int] = []  # call_soon_threadsafe -> the consumer has the block

        def callback(indata, frames, time_info, status):  # the recipe, timed
            nonlocal overflows
            entered = time.monotonic_ns()
            overflows += bool(status.input_overflow)
            loop.call_soon_threadsafe(queue.put_nowait, (indata.copy(), entered, time.monotonic_ns()))
            callback_ns.append(time.monotonic_ns() - entered)

        with sd.InputStream(device=device, channels=CHANNELS, samplerate=RATE, callback=callback):
            stop_at = time.monotonic() + WARMUP_S + seconds
            while time.monotonic() <= stop_at:
                _, entered, published = await queue.get()
                now = time.monotonic_ns()
                wake_ns.append(now - entered)
                publish_ns.append(now - published)
        flags = overflows
        extra["publish"] = summarize(publish_ns[int(WARMUP_S * RATE / PERIOD):])
    skip = int(WARMUP_S * RATE / PERIOD)
    return {"blocks": len(wake_ns) - skip, "wake": summarize(wake_ns[skip:]),
            "callback": summarize(callback_ns[skip:]), "overflow_flags": flags, **extra}


async def _idle(spec: dict, device: int) -> dict:
    import asyncio

    seconds = spec["seconds"]
    loop = asyncio.get_running_loop()

    async def cpu_over(duration: float) -> float:
        started = time.process_time()
        await asyncio.sleep(duration)
        return time.process_time() - started

    result: dict = {}
    cleanup = []
    if spec["recipe"] in ("audioring", "audioring_threads"):
        from concurrent.futures import ThreadPoolExecutor

        from audioring import AudioRecord

        rec = AudioRecord(CHANNELS, RATE, RATE, device=device)
        rec.start_recording()
        await rec.wait_frames(RATE // 2, timeout=10)
        result["alone_cpu_s"] = await cpu_over(seconds)
        start = rec.frames_written
        if spec["recipe"] == "audioring":
            async def consume(stream) -> None:
                async for _ in stream:
                    pass

            tasks = [asyncio.create_task(consume(rec.astream(RATE, start=start, timeout=60)))
                     for _ in range(CONSUMERS)]
        else:
            pool = ThreadPoolExecutor(CONSUMERS)

            async def consume(stream) -> None:
                while True:
                    await loop.run_in_executor(pool, next, stream)

            tasks = [asyncio.create_task(consume(rec.stream(RATE, start=start, timeout=60)))
                     for _ in range(CONSUMERS)]
            cleanup.append(lambda: pool.shutdown(wait=True))  # after close(): the threads' streams end
        cleanup.insert(0, rec.close)

        def flags() -> int:
            return rec.overflows
    else:
        import sounddevice as sd

        queues: list = []  # the consumers' queues, once they exist (the recorder alone first)
        overflows = 0

        def broadcast(block) -> None:
            for queue in queues:
                queue.put_nowait(block)

        def callback(indata, frames, time_info, status):  # the recipe, fanned out to every consumer's queue
            nonlocal overflows
            overflows += bool(status.input_overflow)
            loop.call_soon_threadsafe(broadcast, indata.copy())

        stream = sd.InputStream(device=device, channels=CHANNELS, samplerate=RATE, callback=callback)
        stream.start()
        await asyncio.sleep(0.5)
        result["alone_cpu_s"] = await cpu_over(seconds)

        async def consume(queue) -> None:
            collected = 0
            while True:
                collected += len(await queue.get())
                if collected >= RATE:  # a second of audio, as the others wait for
                    collected -= RATE

        queues += [asyncio.Queue() for _ in range(CONSUMERS)]
        tasks = [asyncio.create_task(consume(q)) for q in queues]
        cleanup.append(stream.close)

        def flags() -> int:
            return overflows
    try:
        await asyncio.sleep(0.5)  # everyone waiting
        result["flowing_cpu_s"] = await cpu_over(seconds)
        os.kill(spec["jackd_pid"], signal.SIGSTOP)  # no audio arrives from here on
        try:
            await asyncio.sleep(0.3)  # what was in flight settles
            result["paused_cpu_s"] = await cpu_over(seconds)
        finally:
            os.kill(spec["jackd_pid"], signal.SIGCONT)
        result["tasks_alive"] = sum(not t.done() for t in tasks)
        await asyncio.sleep(0.2)
        result["overflow_flags"] = flags()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for step in cleanup:
            step()
    result["seconds"] = seconds
    return result


# ---- the case ----------------------------------------------------------------------------------------------


def run(ctx: RunContext) -> dict:
    probe = str(ctx.helper("publish_probe"))
    seconds, idle = SECONDS[ctx.mode], IDLE_S[ctx.mode]
    latency, idling = [], []
    with jack_server(RATE, PERIOD, CHANNELS) as server:
        for recipe in LATENCY_RECIPES:
            log = JackLog(server)
            spec = {"case": "asyncio", "part": "latency", "recipe": recipe, "seconds": seconds, "probe": probe}
            result = run_worker(spec, timeout=seconds + 120, env=server.env)
            result.update(recipe=recipe, jack=log.since())
            latency.append(result)
            ctx.log(f"  asyncio: latency {recipe:18} " + (f"ERROR {result['error']}" if "error" in result else
                    f"callback -> consumer p50 {fmt_ns(result['wake']['median_ns'])}, "
                    f"p99 {fmt_ns(result['wake']['p99_ns'])} ({result['blocks']} blocks)"))
        for recipe in IDLE_RECIPES:
            log = JackLog(server)
            spec = {"case": "asyncio", "part": "idle", "recipe": recipe, "seconds": idle, "jackd_pid": server.pid}
            try:
                result = run_worker(spec, timeout=4 * idle + 120, env=server.env)
            finally:
                os.kill(server.pid, signal.SIGCONT)  # whatever happened to the worker, jackd goes on
            result.update(recipe=recipe, jack=log.since())
            idling.append(result)
            ctx.log(f"  asyncio: idle {recipe:18} " + (f"ERROR {result['error']}" if "error" in result else
                    f"{CONSUMERS} consumers, no audio: {percent(result['paused_cpu_s'], idle)} of a core; "
                    f"audio flowing: {percent(result['flowing_cpu_s'], idle)}"))
    return {"rate": RATE, "period": PERIOD, "channels": CHANNELS, "seconds": seconds, "idle_s": idle,
            "consumers": CONSUMERS, "latency": latency, "idle": idling}
