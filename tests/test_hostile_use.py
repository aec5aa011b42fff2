"""Hostile use: signals, fork, racing threads, exhausted resources, copies and interpreter shutdown.

Each scenario runs in a child process (``python -c``), so that a crash, a
deadlock or a kill is a failed test, not a dead test run, and so that signals,
forks and resource limits stay out of pytest's process. Children report what
they saw as JSON lines on stdout. Audio servers come from the audioring pytest
plugin's fixtures (skipped without them on a developer's machine, failing under
CI=true).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import numpy as np
import pytest

from audioring import AudioRecord, OverrunError, RecorderClosedError, Ring, VirtualInput

#: Shared by every child: imports, the devices by name, and the report.
PRELUDE = textwrap.dedent('''
    import collections, gc, json, os, resource, signal, sys, threading, time
    import numpy as np
    from audioring import AudioRecord, OverrunError, RecorderClosedError, Ring, VirtualInput

    def device(spec):
        """'virtual-silent' (100 frames, then nothing), 'virtual' (a ramp), 'pulse' or 'jack'."""
        if spec == "virtual-silent":
            return VirtualInput("ramp", frames=100)
        if spec == "virtual":
            return VirtualInput("ramp")
        import sounddevice as sd
        if spec == "pulse":
            return "pulse"
        for d in sd.query_devices():
            if d["name"] == "system" and "JACK" in sd.query_hostapis(d["hostapi"])["name"]:
                return d["index"]
        raise LookupError("no JACK device 'system'")

    def rate_of(spec):
        return 8000 if spec.startswith("virtual") else 48000

    def wait_frames(rec, frames, timeout=10.0):
        deadline = time.monotonic() + timeout
        while rec.frames_recorded < frames:
            assert time.monotonic() < deadline, f"only {rec.frames_recorded} of {frames} frames arrived"
            time.sleep(0.01)

    def report(**values):
        print(json.dumps(values), flush=True)
''')

SPECS = ["virtual-silent", "virtual", "pulse", "jack"]
SERVER_SPECS = ["virtual", "pulse", "jack"]


@pytest.fixture
def device_env(request: pytest.FixtureRequest) -> Any:
    """``(spec) -> env``: starts the server the spec needs; the child's environment."""

    def get(spec: str) -> dict[str, str]:
        if spec == "pulse":
            request.getfixturevalue("pulse_server")
        elif spec == "jack":
            request.getfixturevalue("jack_server_factory")(48000, 256, 2)
        return dict(os.environ)

    return get


def run_child(code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 90,
              clean_stderr: bool = True) -> dict[str, Any]:
    """Run PRELUDE + code; fail on a crash, a hang, a non-zero exit or (by default) anything on stderr.

    The child runs in its own process group, killed whole on a hang: a forked
    grandchild that hangs would otherwise keep the output pipes open forever.
    """
    proc = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the child hung ({timeout} s): stdout {stdout!r} stderr {stderr!r}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers (forked grandchildren)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert done.returncode == 0, f"child exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    if clean_stderr:
        assert done.stderr == "", done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from the child:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# ---- signals while a stream waits ------------------------------------------------------------

SIGNAL_CHILD = '''
spec, mode = sys.argv[1], sys.argv[2]
rate = rate_of(spec)
rec = AudioRecord(2, rate, 2 * rate, device=device(spec))
rec.start_recording()
handled = []
if mode == "handler":  # a handler that does not raise: the wait must go on afterwards
    signal.signal(signal.SIGTERM, lambda *a: handled.append(time.monotonic()))
elif mode == "sigterm-exits":  # the usual SIGTERM handler of a service
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))
timeout = {"handler": 1.0, "sigint-timeout": 30.0}.get(mode)
stream = rec.stream(2 * rate, timeout=timeout)  # one block is two seconds: it is not there yet
print("READY", flush=True)
started = time.monotonic()
try:
    next(stream)
    outcome = "block"
except BaseException as error:  # KeyboardInterrupt, SystemExit, TimeoutError
    outcome = type(error).__name__
ended = time.monotonic()
# Still usable: the same stream, and a new recording.
usable = {"recording": rec.recording, "read": list(rec.read(10).shape)}
if spec != "virtual-silent":
    for attempt in range(5):  # the handler mode's stream times out after each second
        try:
            usable["same_stream"] = list(next(stream).shape)
            break
        except TimeoutError:
            pass
rec.stop()
rec.start_recording()
if spec != "virtual-silent":
    usable["new_stream"] = list(next(rec.stream(rate // 10, timeout=10)).shape)
rec.close()
report(outcome=outcome, ended=ended, waited=ended - started, handled=handled, usable=usable)
'''


def signal_waiting_child(spec: str, mode: str, signum: int, env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Start SIGNAL_CHILD, signal it 0.3 s into its wait; return its report and when the signal was sent."""
    proc = subprocess.Popen([sys.executable, "-c", PRELUDE + SIGNAL_CHILD, spec, mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("READY"), f"child not ready: {line!r} {proc.stderr.read() if not ready else ''}"
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{out}\n{err}"
    assert err == "", err
    return json.loads(out.splitlines()[-1]), sent


def check_still_usable(spec: str, usable: dict[str, Any]) -> None:
    assert usable["recording"] is True and usable["read"] == [10, 2]
    if spec != "virtual-silent":
        rate = 8000 if spec.startswith("virtual") else 48000
        assert usable["same_stream"] == [2 * rate, 2] and usable["new_stream"] == [rate // 10, 2]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("mode", ["sigint", "sigint-timeout"])
def test_ctrl_c_interrupts_a_waiting_stream_at_once(device_env, spec, mode):
    result, sent = signal_waiting_child(spec, mode, signal.SIGINT, device_env(spec))
    assert result["outcome"] == "KeyboardInterrupt"
    assert result["ended"] - sent < 0.1, f"KeyboardInterrupt {result['ended'] - sent:.3f} s after SIGINT"
    check_still_usable(spec, result["usable"])


@pytest.mark.parametrize("spec", SPECS)
def test_a_sigterm_handler_that_exits_ends_a_waiting_stream_at_once(device_env, spec):
    result, sent = signal_waiting_child(spec, "sigterm-exits", signal.SIGTERM, device_env(spec))
    assert result["outcome"] == "SystemExit"
    assert result["ended"] - sent < 0.1, f"SystemExit {result['ended'] - sent:.3f} s after SIGTERM"
    check_still_usable(spec, result["usable"])


@pytest.mark.parametrize("spec", SPECS)
def test_a_signal_handler_runs_during_a_wait_which_then_goes_on(device_env, spec):
    result, sent = signal_waiting_child(spec, "handler", signal.SIGTERM, device_env(spec))
    assert len(result["handled"]) == 1 and result["handled"][0] - sent < 0.1, (result, sent)
    # The handler returned: the wait went on to its 1 s timeout (a 2 s block cannot be complete).
    assert result["outcome"] == "TimeoutError" and result["waited"] >= 0.95, result
    check_still_usable(spec, result["usable"])


# ---- whatever interrupts start_recording(), stop() and close() ---------------------------------

LIFECYCLE_CHILD = '''
spec, scenario = sys.argv[1], sys.argv[2]
rate = rate_of(spec)
slow = spec.startswith("virtual")
# PulseAudio with 2**24-frame blocks: stop() takes seconds (PortAudio waits for the block).
# The virtual input stops at once, so a wrapper sleeps after its real start()/stop().
rec = AudioRecord(2, rate, rate // 10, device=device(spec), blocksize=0 if slow else 2**24)

class Slow:
    def __init__(self, source):
        self._source = source
    def __getattr__(self, name):
        return getattr(self._source, name)
    def start(self):
        self._source.start()
        time.sleep(1.5)
    def stop(self):
        self._source.stop()
        time.sleep(1.5)

if slow:
    rec._source = Slow(rec._source)
    rec.start_recording() if not scenario.endswith("start") else None
else:
    rec.start_recording() if not scenario.endswith("start") else None
    time.sleep(0.5)
events = []
if scenario.startswith("close-in-handler"):
    def handler(*args):
        events.append("handler")
        rec.close()  # while the main thread is inside stop() or start_recording(): must not deadlock
        events.append("close returned")
    signal.signal(signal.SIGTERM, handler)
    signum = signal.SIGTERM
else:
    signum = signal.SIGINT
threading.Timer(0.3, os.kill, (os.getpid(), signum)).start()
call = rec.start_recording if scenario.endswith("start") else rec.stop
try:
    call()
    events.append("returned")
except KeyboardInterrupt:
    events.append("KeyboardInterrupt")
state = {"recording": rec.recording, "closed": rec.closed}
again = {}
if not rec.closed:
    if slow:
        rec._source = rec._source._source
    rec.stop()
    again["stopped"] = rec.recording
    rec.start_recording()
    again["started"] = rec.recording
    if slow:
        wait_frames(rec, rate // 10)
        again["frames"] = rec.frames_recorded
    rec.close()
report(events=events, state=state, again=again)
'''


@pytest.mark.parametrize("spec", ["virtual", "pulse"])
def test_ctrl_c_during_stop_leaves_a_true_state(device_env, spec):
    result = run_child(LIFECYCLE_CHILD, spec, "sigint-during-stop", env=device_env(spec))
    assert result["events"] == ["KeyboardInterrupt"]
    assert result["state"] == {"recording": False, "closed": False}  # the stream did stop
    assert result["again"]["stopped"] is False and result["again"]["started"] is True
    if spec == "virtual":
        assert result["again"]["frames"] >= 800


def test_ctrl_c_during_start_leaves_a_true_state():
    result = run_child(LIFECYCLE_CHILD, "virtual", "sigint-during-start")
    assert result["events"] == ["KeyboardInterrupt"]
    assert result["state"] == {"recording": True, "closed": False}  # the source did start
    assert result["again"] == {"stopped": False, "started": True, "frames": result["again"]["frames"]}


@pytest.mark.parametrize("spec", ["virtual", "pulse"])
def test_close_in_a_signal_handler_during_stop_is_done_after_it(device_env, spec):
    result = run_child(LIFECYCLE_CHILD, spec, "close-in-handler-during-stop", env=device_env(spec))
    # The handler's close() returned at once (deferred), stop() finished, then the close ran.
    assert result["events"] == ["handler", "close returned", "returned"]
    assert result["state"] == {"recording": False, "closed": True}


def test_close_in_a_signal_handler_during_start():
    result = run_child(LIFECYCLE_CHILD, "virtual", "close-in-handler-during-start")
    assert result["events"] == ["handler", "close returned", "returned"]
    assert result["state"] == {"recording": False, "closed": True}


def test_signal_handler_calls_every_method_during_stop():
    code = '''
    rec = AudioRecord(1, 8000, 800, device=device("virtual"))
    rec.start_recording()
    real_stop = rec._source.stop
    calls = []
    def slow_stop():
        real_stop()
        time.sleep(1.0)
    rec._source.stop = slow_stop
    def handler(*args):
        for name in ("start_recording", "stop", "start_recording"):  # deferred, in order
            getattr(rec, name)()
            calls.append(name)
    signal.signal(signal.SIGUSR1, handler)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    rec.stop()
    report(calls=calls, recording=rec.recording)
    rec.close()
    '''
    result = run_child(code)
    assert result == {"calls": ["start_recording", "stop", "start_recording"], "recording": True}


def test_time_waits_for_a_stop_in_another_thread_and_answers_in_a_signal_handler_during_it():
    # PortAudio cannot tell a stream's time while it stops (on PulseAudio,
    # Pa_GetStreamTime then fails): `time` waits for the transition, except
    # on the thread inside it, where it would wait for itself.
    code = '''
    rec = AudioRecord(1, 8000, 800, device=device("virtual"))
    rec.start_recording()
    real_stop = rec._source.stop
    stopping, events = threading.Event(), []
    def slow_stop():
        stopping.set()
        time.sleep(1.0)
        real_stop()
        events.append("stopped")
    rec._source.stop = slow_stop
    def ask_time():
        stopping.wait()
        clock = rec.time
        events.append(("time", isinstance(clock, float)))
    asker = threading.Thread(target=ask_time)
    asker.start()
    def handler(*args):
        events.append(("time in handler", isinstance(rec.time, float)))
    signal.signal(signal.SIGUSR1, handler)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    rec.stop()
    asker.join(10)
    report(events=events, hung=asker.is_alive())
    rec.close()
    '''
    result = run_child(code)
    assert result == {
        "events": [["time in handler", True], "stopped", ["time", True]],
        "hung": False,
    }


def test_a_failed_thread_start_leaves_the_recorder_stopped_and_restartable():
    code = '''
    rec = AudioRecord(1, 8000, 8000, device=device("virtual"), dtype="int32")
    vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 20), hard))  # no room for a thread's stack
    try:
        rec.start_recording()
        error = None
    except RuntimeError as e:
        error = str(e)
    failed = {"error": error, "recording": rec.recording}
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    rec.start_recording()
    wait_frames(rec, 800)
    data = rec.read(800)
    report(failed=failed, recording=rec.recording, ramp=bool((np.diff(data[:, 0]) == 1).all()))
    rec.close()
    '''
    result = run_child(code)
    assert "cannot start the virtual input's thread" in result["failed"]["error"]
    assert result["failed"]["recording"] is False
    assert result["recording"] is True and result["ramp"] is True


# ---- fork ---------------------------------------------------------------------------------------

FORK_CHILD = '''
spec = sys.argv[1]
rate = rate_of(spec)
rec = AudioRecord(1, rate, rate, device=device(spec), dtype="int32")
rec.start_recording()
wait_frames(rec, rate // 4)
view = rec.read(rate // 8)
ring = Ring(1, 1024, "int32")
ring.write(np.arange(100, dtype="int32").reshape(-1, 1))
ring_view = ring.latest(10)
block = np.full((5, 1), -1, dtype="int32")
readfd, writefd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(readfd)
    refused = {}
    for name, call in {
        "read": lambda: rec.read(10), "read_copy": lambda: rec.read(10, copy=True),
        "is_intact": lambda: rec.is_intact(view), "frame_of": lambda: rec.frame_of(view),
        "start_frame": lambda: rec.start_frame(view),
        "stream": lambda: rec.stream(10), "time": lambda: rec.time,
        "start_recording": rec.start_recording, "stop": rec.stop,
        "ring.write": lambda: ring.write(block), "ring.clear": ring.clear, "ring.latest": lambda: ring.latest(5),
        "ring.is_intact": lambda: ring.is_intact(ring_view), "ring.frame_of": lambda: ring.frame_of(ring_view),
        "ring.start_frame": lambda: ring.start_frame(ring_view),
    }.items():
        try:
            call()
            refused[name] = "no error"
        except RuntimeError as error:
            refused[name] = str(error)
    rec.close()
    closed = rec.closed
    del rec, view
    gc.collect()
    # A recorder made in the child works.
    own = AudioRecord(1, 8000, 800, device=VirtualInput("ramp"), dtype="int32")
    own.start_recording()
    wait_frames(own, 800)
    own_ok = bool((np.diff(own.read(800)[:, 0]) == 1).all())
    own.close()
    os.write(writefd, json.dumps({"refused": refused, "closed": closed, "own": own_ok}).encode())
    os.close(writefd)
    sys.exit(0)  # a normal exit: atexit handlers run (sounddevice's would call Pa_Terminate)
os.close(writefd)
chunks = []
while True:
    chunk = os.read(readfd, 65536)
    if not chunk:
        break
    chunks.append(chunk)
child = json.loads(b"".join(chunks))
_, status = os.waitpid(pid, 0)
frames = rec.frames_recorded
time.sleep(0.3)
parent = {
    "recording": rec.recording,
    "still_recording": rec.frames_recorded > frames,
    "ring": ring.latest(100)[:, 0].tolist() == list(range(100)) and ring.frames_written == 100,
}
if spec.startswith("virtual"):  # a view from before the fork: still the ramp, or judged overwritten
    parent["view"] = (not rec.is_intact(view)) or bool((np.diff(view[:, 0]) == 1).all())
if spec.startswith("virtual"):
    wait_frames(rec, rate)
    data = rec.read(rate)
    parent["ramp"] = bool((np.diff(data[:, 0]) == 1).all())
rec.close()
report(child=child, status=status, parent=parent)
'''


@pytest.mark.parametrize("spec", SERVER_SPECS)
def test_a_forked_child_refuses_the_parents_recorder_and_ring(device_env, spec):
    result = run_child(FORK_CHILD, spec, env=device_env(spec))
    child = result["child"]
    for name, message in child["refused"].items():
        assert "forked child" in message and "in the child process instead" in message, (name, message)
    assert child["closed"] is True and child["own"] is True
    assert result["status"] == 0, "the child did not exit cleanly (PortAudio torn down in the child?)"
    parent = result["parent"]
    assert parent["recording"] and parent["still_recording"] and parent["ring"]
    if spec == "virtual":
        assert parent["ramp"] and parent["view"], "the child wrote into the parent's ring"


@pytest.mark.parametrize("spec", SERVER_SPECS)
def test_multiprocessing_fork_child_restarting_a_recorder_raises(device_env, spec):
    code = '''
    import multiprocessing
    spec = sys.argv[1]
    rec = AudioRecord(1, rate_of(spec), 800, device=device(spec))
    rec.start_recording()

    def restart(queue):
        for name in ("stop", "start_recording"):
            try:
                getattr(rec, name)()
                queue.put(f"{name}: no error")
            except RuntimeError as error:
                queue.put(f"{name}: {error}")

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=restart, args=(queue,))
    process.start()
    process.join(30)
    hung = process.is_alive()
    if hung:
        process.kill()
    messages = [queue.get(timeout=5) for _ in range(2)] if not hung else []
    frames = rec.frames_recorded
    time.sleep(0.3)
    report(hung=hung, exitcode=process.exitcode, messages=messages, parent=rec.frames_recorded > frames)
    rec.close()
    '''
    result = run_child(code, spec, env=device_env(spec))
    assert not result["hung"] and result["exitcode"] == 0
    assert [m.split(":")[0] for m in result["messages"]] == ["stop", "start_recording"]
    assert all("forked child" in m for m in result["messages"]), result["messages"]
    assert result["parent"]


def test_a_forked_child_leaves_a_converting_recorder_alone():
    # The converter's thread, like the virtual input's, does not exist in the
    # child: close() and garbage collection there must not join it (a hang).
    code = '''
    rec = AudioRecord(1, 8000, 800, device=VirtualInput("sine", 440, rate=16000))
    rec.start_recording()
    assert rec.converting
    wait_frames(rec, 800)
    pid = os.fork()
    if pid == 0:
        try:
            rec.start_recording()
            os._exit(3)
        except RuntimeError:
            pass
        try:
            rec.stop()
            os._exit(4)
        except RuntimeError:
            pass
        rec.close()
        del rec
        gc.collect()
        sys.exit(0)  # a normal exit, with the recorder's memory freed
    _, status = os.waitpid(pid, 0)
    frames = rec.frames_recorded
    time.sleep(0.3)
    report(status=status, recording=rec.recording, still=rec.frames_recorded > frames)
    rec.close()
    '''
    assert run_child(code, timeout=30) == {"status": 0, "recording": True, "still": True}


def test_a_child_forked_while_another_thread_holds_the_lock_can_still_close():
    code = '''
    rec = AudioRecord(1, 8000, 800, device=device("virtual"))
    rec.start_recording()
    rec._transitions._lock.acquire()  # as if another thread were inside stop() at the fork
    pid = os.fork()
    if pid == 0:
        rec.close()  # must not wait for a lock nobody in this process will release
        os._exit(0 if rec.closed else 1)
    rec._transitions._lock.release()
    _, status = os.waitpid(pid, 0)
    report(status=status, recording=rec.recording)
    rec.close()
    '''
    assert run_child(code, timeout=30) == {"status": 0, "recording": True}


# ---- threads racing every public method -----------------------------------------------------------

RACE_CHILD = '''
spec = sys.argv[1]
rate = rate_of(spec)
rec = AudioRecord(2, rate, rate // 2, device=device(spec))
allowed = (RecorderClosedError, OverrunError, TimeoutError)
unexpected = []
counts = collections.Counter()
stop_at = [time.monotonic() + 3.0]

def expected_runtime_error(error):
    text = str(error)
    return "needs a recording" in text or "no audio captured yet" in text or "another thread" in text

def hammer(name, call):
    while time.monotonic() < stop_at[0]:
        try:
            call()
            counts[name] += 1
        except allowed:
            counts[name + ":expected"] += 1
        except RuntimeError as error:
            if expected_runtime_error(error):
                counts[name + ":expected"] += 1
            else:
                unexpected.append(f"{name}: {type(error).__name__}: {error}")
        except Exception as error:
            unexpected.append(f"{name}: {type(error).__name__}: {error}")

def consume():
    for block in rec.stream(64, timeout=0.5):
        assert block.shape == (64, 2)
        if time.monotonic() >= stop_at[0]:
            break

shared = {}
def shared_stream():  # several threads on one stream: a clear error or a block
    if "stream" not in shared or shared["stream"] is None:
        shared["stream"] = rec.stream(32, timeout=0.5)
    try:
        next(shared["stream"])
    except StopIteration:
        shared["stream"] = None

calls = {
    "start_recording": rec.start_recording, "stop": rec.stop,
    "read": lambda: rec.read(100), "read_copy": lambda: rec.read(100, copy=True),
    "is_intact": lambda: rec.is_intact(rec.read(50)[10:]), "frame_of": lambda: rec.frame_of(rec.read(5)),
    "start_frame": lambda: rec.start_frame(rec.read(5)),
    "properties": lambda: (rec.recording, rec.closed, rec.stats, rec.frames_written, rec.first_frame,
                           rec.latency, rec.device, rec.driver, repr(rec)),
    "time": lambda: rec.time, "time_at": lambda: rec.time_at(rec.first_frame),
    "stream": consume, "shared_stream_1": shared_stream, "shared_stream_2": shared_stream,
}

def race(extra):
    threads = [threading.Thread(target=hammer, args=item, daemon=True) for item in list(calls.items()) + extra]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return [t.name for t in threads if t.is_alive()]

hung = race([])
# Afterwards the state tells the truth and every call works.
rec.stop()
consistent = [rec.recording is False]
rec.start_recording()
consistent.append(rec.recording is True)
wait_frames(rec, rate // 10)
consistent.append(rec.read(10).shape == (10, 2))
# Then close() races everything: afterwards only RecorderClosedError.
stop_at[0] = time.monotonic() + 2.0
threading.Timer(0.5, rec.close).start()
hung += race([])
consistent.append(rec.closed and not rec.recording)
report(hung=hung, unexpected=unexpected[:20], counts=counts, consistent=consistent)
'''


@pytest.mark.parametrize("spec", ["virtual", "pulse"])
def test_threads_racing_every_public_method(device_env, spec):
    result = run_child(RACE_CHILD, spec, env=device_env(spec), timeout=120)
    assert result["hung"] == [], "threads deadlocked"
    assert result["unexpected"] == []
    assert all(result["consistent"]), result["consistent"]
    counts = result["counts"]
    for name in ("start_recording", "stop", "read", "read_copy", "is_intact", "stream"):
        assert counts.get(name, 0) > 0, (name, counts)


def test_two_threads_on_one_stream_get_a_clear_error():
    rec = AudioRecord(1, 8000, 800, device=VirtualInput("ramp", frames=100))
    rec.start_recording()
    stream = rec.stream(200, timeout=5)  # never complete: the input stops after 100 frames
    outcome: list[BaseException] = []

    def first() -> None:
        try:
            next(stream)
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome.append(error)

    waiter = threading.Thread(target=first)
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="another thread"):
        next(stream)
    assert time.monotonic() - started < 1
    rec.close()
    waiter.join(5)
    assert not waiter.is_alive() and isinstance(outcome[0], RecorderClosedError)


# ---- resource exhaustion ---------------------------------------------------------------------------


def test_exhausted_address_space_raises_memory_error_never_kills():
    code = '''
    def vm():
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    rec = AudioRecord(8, 48000, 1_000_000, device=VirtualInput("ramp"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm() + (8 << 20), hard))
    results = {}
    for name, call in {
        "ring": lambda: Ring(2, 10**8),
        "recorder": lambda: AudioRecord(8, 48000, 48000 * 60, device=VirtualInput()),
        "virtual_block": lambda: AudioRecord(1, 8000, 100, device=VirtualInput(), blocksize=2**24),
        "read_copy": lambda: rec.read(1_000_000, copy=True),
        "ring_copy": lambda: rec._ring.latest(1_000_000, copy=True),
    }.items():
        try:
            call()
            results[name] = "no error"
        except MemoryError as error:
            results[name] = "MemoryError"
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    rec.start_recording()
    wait_frames(rec, 4800)
    rec.close()
    report(results=results)
    '''
    result = run_child(code)
    assert set(result["results"].values()) == {"MemoryError"}, result


def test_a_virtual_block_buffer_larger_than_memory_is_refused_before_any_allocation():
    # The ring and the virtual input's block buffer (as large as the ring) each
    # fit in 60% of the available memory, together they do not. The address
    # space is limited to 70% of it: without the check, the block's allocation
    # would fail with a bare std::bad_alloc (and with no limit, the process
    # would be killed by the OOM killer when the block is zeroed).
    code = '''
    available = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemAvailable:"))) * 1024
    channels = max(1, int(available * 0.6 / (2**24 * 4)))
    vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + int(available * 0.7), resource.RLIM_INFINITY))
    started = time.monotonic()
    try:
        AudioRecord(channels, 48000, 100, device=VirtualInput("noise"), blocksize=2**24)
        error = "no error"
    except MemoryError as e:
        error = str(e)
    report(error=error, took=time.monotonic() - started, channels=channels)
    '''
    result = run_child(code, timeout=120)
    assert "virtual input's block buffer" in result["error"] and "bytes of memory are available" in result["error"]
    assert result["took"] < 1.0, "the ring was allocated (and zeroed) before the check"


def test_a_channel_count_the_device_refuses_is_refused_before_the_ring_is_allocated(device_env):
    # 65,536 channels x 8100 frames x 4 bytes = 2 GiB of ring. With 1 GiB of
    # address space to spare, the device's refusal must come first.
    code = '''
    vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    import sounddevice  # loaded before the limit: PortAudio's own start-up needs memory
    resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))
    started = time.monotonic()
    try:
        AudioRecord(65536, 48000, 100, headroom=8000, device="pulse")
        error = "no error"
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    report(error=error, took=time.monotonic() - started)
    '''
    result = run_child(code, env=device_env("pulse"), clean_stderr=False)  # PortAudio prints its checks
    assert result["error"].startswith("ValueError: device 'pulse' does not accept channels=65536"), result
    assert result["took"] < 1.0


# ---- copies and pickles --------------------------------------------------------------------------


def test_recorders_and_rings_refuse_copy_and_pickle_and_stay_usable():
    rec = AudioRecord(1, 8000, 800, device=VirtualInput("ramp"), dtype="int32")
    ring = Ring(1, 1024, "int32")
    try:
        rec.start_recording()
        for target, says in ((rec, "AudioRecord"), (ring, "Ring")):
            with pytest.raises(TypeError, match=f"cannot be copied.*{says}|{says}.*cannot be copied"):
                copy.copy(target)
            with pytest.raises(TypeError, match="cannot be copied"):
                copy.deepcopy(target)
            for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
                with pytest.raises(TypeError, match=f"cannot be pickled.*create the {says} in the worker process"):
                    pickle.dumps(target, protocol)
        with pytest.raises(TypeError, match="FrameStream cannot be pickled.*in the worker process"):
            pickle.dumps(rec.stream(10))
        # Nothing was closed or shared on the way.
        assert rec.recording and not rec.closed
        time.sleep(0.2)
        assert (np.diff(rec.read(800)[:, 0]) == 1).all()
        ring.write(np.ones((3, 1), dtype="int32"))
        assert ring.latest(3).tolist() == [[1], [1], [1]]
    finally:
        rec.close()


# ---- interpreter shutdown with recorders open --------------------------------------------------

SHUTDOWN_CHILD = '''
import subprocess, weakref
spec, driver, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "converting":  # the device at its rate, a converter thread to 16 kHz
    rec = AudioRecord(2, 16000, 4800, device=device(spec), driver=driver, device_rate=rate_of(spec))
    assert rec.converting
else:
    rec = AudioRecord(2, rate_of(spec), 4800, device=device(spec), driver=driver)
recorder = weakref.ref(rec)
ended, consumers = [], []
if mode != "stopped":
    rec.start_recording()
if mode == "cycle":  # collected only by the final garbage collection
    import gc
    gc.disable()  # (which runs even so) not by one that any allocation from here on may start
    class Holder:
        pass
    holder = Holder()
    holder.me, holder.rec = holder, rec
    del holder, rec
elif mode == "streaming-thread":  # a daemon thread waits in a stream at exit
    def consume():
        try:
            for block in rec.stream(480):
                pass
            ended.append("StopIteration")
        except BaseException as error:
            ended.append(type(error).__name__)
    consumers.append(threading.Thread(target=consume, daemon=True))
elif mode == "waiting-thread":  # a daemon thread waits for a block that never comes
    def consume():
        for block in rec.stream(4800):
            pass
    rec.stop()
    rec.start_recording()
    consumers.append(threading.Thread(target=consume, daemon=True))
for consumer in consumers:
    consumer.start()


def streams_of_this_process():
    """The device streams the sound server has open for this process."""
    if spec == "pulse":
        out = subprocess.run(["pactl", "list", "source-outputs"], capture_output=True, text=True).stdout
        return out.count(f'application.process.id = "{os.getpid()}"')
    out = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout
    return len({line.split(":")[0] for line in out.splitlines() if line.startswith("PortAudio")})  # clients


if spec in ("pulse", "jack"):
    # What audioring promises by the time PortAudio shuts down (sounddevice's exit handler calls
    # _terminate, a module global looked up at the call): every recorder stopped and its stream
    # closed, and a thread iterating a stream ended quietly.
    import sounddevice as sd
    terminate = sd._terminate

    def checked_terminate():
        open_streams = streams_of_this_process()
        deadline = time.monotonic() + 5
        while open_streams and time.monotonic() < deadline:  # the server learns of a close in a moment
            time.sleep(0.05)
            open_streams = streams_of_this_process()
        for consumer in consumers:
            consumer.join(5)
        rec = recorder()
        report(at_pa_terminate=True, recording=None if rec is None else rec.recording,
               open_streams=open_streams, ended=ended)
        sd._terminate = terminate
        terminate()

    assert streams_of_this_process() == 1  # the server shows the stream, so the check can see it go
    sd._terminate = checked_terminate
time.sleep(0.3)
print("{}")
'''

SHUTDOWN_CASES = [(spec, driver, mode) for spec, drivers in (("virtual", ["native"]), ("pulse", ["native", "python"]),
                                                           ("jack", ["native", "python"]))
                  for driver in drivers for mode in ("global", "stopped", "cycle", "streaming-thread")]


@pytest.mark.parametrize(("spec", "driver", "mode"), SHUTDOWN_CASES + [
    ("virtual", "native", "waiting-thread"), ("pulse", "native", "converting"), ("jack", "native", "converting"),
])
def test_exiting_with_recorders_open_prints_nothing(device_env, spec, driver, mode):
    result = run_child(SHUTDOWN_CHILD, spec, driver, mode, env=device_env(spec))  # exit status 0, stderr empty
    if spec == "virtual":  # no PortAudio to shut down
        assert result == {}
        return
    # By the time PortAudio shut down: the recorder stopped (in mode "cycle" it may have been collected),
    # its stream gone from the server, and a thread iterating a stream saw the recording end.
    assert result["at_pa_terminate"], result
    assert result["recording"] is False or (mode == "cycle" and result["recording"] is None), result
    assert result["open_streams"] == 0, result
    assert result["ended"] == (["StopIteration"] if mode == "streaming-thread" else []), result


# ---- the questionable ones, decided ------------------------------------------------------------------


def test_a_lapped_read_copy_raises_overrun_error():
    # 16 frames of headroom: any write of a 16-frame block during the copy of
    # 64 MB overwrites frames being copied, and the free-running input writes
    # all the time (unless the scheduler stops it for a whole copy, 64 times).
    frames = 2**18
    rec = AudioRecord(64, 48000, frames, device=VirtualInput("ramp", realtime=False), blocksize=16,
                      headroom=0, dtype="int32")
    try:
        rec.start_recording()
        assert rec.headroom == 16
        with pytest.raises(OverrunError, match="overwrote the frames 64 times") as info:
            for _ in range(50):
                rec.read(frames, copy=True)
        assert isinstance(info.value, RuntimeError)
        assert 1 <= info.value.frames_lost <= frames and info.value.position > frames
    finally:
        rec.close()


def test_the_python_driver_with_a_virtual_input_is_an_error():
    with pytest.raises(ValueError, match="driver='python' needs a PortAudio device"):
        AudioRecord(1, 8000, 800, device=VirtualInput(), driver="python")


@pytest.mark.audio_server
def test_a_numpy_integer_device_index_is_accepted(pulse_server):
    import sounddevice as sd

    index = next(d["index"] for d in sd.query_devices() if d["name"] == "pulse")
    with AudioRecord(2, 48000, 4800, device=np.int64(index)) as rec:
        assert rec.device == "pulse"
    with pytest.raises(TypeError, match="device must be"):
        AudioRecord(2, 48000, 4800, device=np.float64(index))


@pytest.mark.audio_server
@pytest.mark.parametrize("driver", ["native", "python"])
def test_jack_latency_is_one_period_not_zero(jack_server_factory, driver):
    import sounddevice as sd

    jack_server_factory(48000, 512, 2)
    index = next(d["index"] for d in sd.query_devices() if d["name"] == "system")
    with AudioRecord(2, 48000, 4800, device=index, driver=driver) as rec:
        assert rec.latency == pytest.approx(512 / 48000)
