"""One recording, many processes: share= on the producer, audioring.attach() in real reader processes.

No mocks: producers and readers are separate Python processes (spawn), the
shared memory is the system's, and the permission test runs a reader as
another user.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audioring
import sharing_workers as workers
from audioring import AudioRecord, Ring, VirtualInput, attach, shared
from test_record_servers import jack_input_device

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sharing needs Linux")

SPAWN = multiprocessing.get_context("spawn")
SHM = Path("/dev/shm")
_names = itertools.count()


def unique(label: str) -> str:
    """A name no other test (or test run) uses."""
    return f"t{os.getpid()}-{next(_names)}-{label}"


def shm_file(name: str) -> Path:
    """Where this user's recording ``name`` lives."""
    return SHM / f"audioring-{os.geteuid()}-{name}"


def collect(queue: multiprocessing.Queue, n: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    return [queue.get(timeout=max(0.1, deadline - time.monotonic())) for _ in range(n)]


def join_all(processes: list, timeout: float = 30) -> None:
    for p in processes:
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join()


# ---- many reader processes, one producer process -------------------------------------------------


def test_four_readers_stream_ten_million_frames_losslessly_and_latest_windows_are_never_wrong():
    name, frames, speed = unique("ramp"), 10_000_000, 20.0  # 960,000 frames/s: about 10.4 s
    results, ready, started, stop = SPAWN.Queue(), [SPAWN.Event() for _ in range(5)], SPAWN.Event(), SPAWN.Event()
    readers = [SPAWN.Process(target=workers.stream_ramp, args=(name, 40000, results, ready[i])) for i in range(4)]
    readers.append(SPAWN.Process(target=workers.sample_latest_windows, args=(name, results, ready[4])))
    for p in readers:
        p.start()
    # Recording starts once the five readers attached; the ring holds 4 s of the
    # sped-up ramp, so the latest windows are lapped now and then (and must say so).
    producer = SPAWN.Process(target=workers.ramp_producer, args=(name, speed, frames, 4.0, started, stop, ready))
    producer.start()
    try:
        got = collect(results, 5, timeout=120)
    finally:
        stop.set()
        join_all([producer, *readers])
    streams = [r for r in got if r[0] == "stream"]
    latest = [r for r in got if r[0] == "latest"]
    assert all(error is None for *_, error in got), got
    assert len(streams) == 4 and all(r[2] == frames and r[3] for r in streams), streams
    (_, _, checked, wrong, _), = latest
    assert checked > 100 and wrong == 0, latest
    assert producer.exitcode == 0
    assert not shm_file(name).exists(), "the producer's close() left its name behind"


def test_a_reader_process_gets_a_jack_tone_at_the_right_frequency(jack_server_factory):
    rate, name = 48000, unique("jack")
    results = SPAWN.Queue()
    server_freqs = [1000, 3000]
    # What the reader process gets is checked here; that readers cost the
    # producer nothing, with the exactly paced virtual input (below).
    server = jack_server_factory(rate, 1024, 2)
    with server.inject_tones(server_freqs) as injector, \
            AudioRecord(2, rate, rate, device=jack_input_device(), share=name):
        injector.wait_connected(2)
        reader = SPAWN.Process(target=workers.dominant_frequencies, args=(name, rate // 2, results))
        reader.start()
        found, error = results.get(timeout=60)
        join_all([reader])
    assert error is None, error
    assert found == pytest.approx(server_freqs, abs=4)


def test_a_late_reader_streams_from_two_seconds_back_and_gets_exactly_those_frames():
    name, rate = unique("preroll"), 48000
    results = SPAWN.Queue()
    with AudioRecord(1, rate, 5 * rate, device=VirtualInput("ramp"), dtype="int32", share=name) as rec:
        while rec.frames_recorded < 3 * rate:  # the reader comes late: 3 s into the recording
            time.sleep(0.01)
        reader = SPAWN.Process(target=workers.preroll, args=(name, 2.0, 1.0, results))
        reader.start()
        first, values, error = results.get(timeout=60)
        join_all([reader])
    assert error is None, error
    assert len(values) == 3 * rate
    # Exactly the frames from the one asked for on: the ramp holds each frame's number.
    assert np.array_equal(values, np.arange(first, first + 3 * rate))


# ---- producers and readers that die --------------------------------------------------------------


def test_a_sigkilled_producer_ends_every_reader_within_a_second_and_its_name_is_reclaimed():
    name = unique("killed")
    results, started, stop = SPAWN.Queue(), SPAWN.Event(), SPAWN.Event()
    ready = [SPAWN.Event() for _ in range(2)]
    producer = SPAWN.Process(target=workers.ramp_producer, args=(name, 1.0, 0, 2.0, started, stop, ready))
    producer.start()
    readers = [SPAWN.Process(target=workers.stream_until_lost, args=(name, results, ready[i])) for i in range(2)]
    for p in readers:
        p.start()
    try:
        assert started.wait(60)
        time.sleep(0.5)  # streaming
        killed_at = time.monotonic()
        os.kill(producer.pid, signal.SIGKILL)
        got = collect(results, 2, timeout=10)
    finally:
        join_all([producer, *readers])
    for pid, outcome, at, in_order in got:
        assert outcome == "ProducerLostError", got
        assert at - killed_at < 1.0, f"reader {pid} learnt of the death after {at - killed_at:.2f} s"
        assert in_order
    # The dead producer's entry is stale: listed nowhere, and the next producer takes the name.
    assert name not in [s.name for s in shared()]
    with AudioRecord(1, 16000, 1600, device=VirtualInput("sine"), share=name) as rec:
        assert rec.shared_name == name
        with attach(name) as mic:
            assert mic.producer_pid == os.getpid()


def test_a_sigkilled_reader_costs_the_producer_and_other_readers_nothing():
    name, rate = unique("reader-killed"), 48000
    results, unread = SPAWN.Queue(), SPAWN.Queue()  # both kept alive until the children have them
    ready = [SPAWN.Event() for _ in range(2)]
    with AudioRecord(1, rate, rate, device=VirtualInput("ramp"), dtype="int32", share=name) as rec:
        victim = SPAWN.Process(target=workers.stream_until_lost, args=(name, unread, ready[0]))
        survivor = SPAWN.Process(target=workers.stream_until_lost, args=(name, results, ready[1]))
        victim.start()
        survivor.start()
        assert ready[0].wait(60) and ready[1].wait(60)
        time.sleep(0.3)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        time.sleep(1.0)
        stats = rec.stats
        assert rec.recording and stats.input_overflows == 0 and stats.device_frames_lost == 0
    (_, outcome, _, in_order), = collect(results, 1, timeout=10)  # the producer's close ends the survivor's stream
    join_all([survivor])
    assert outcome == "ended" and in_order


# ---- names, owners, files ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "x" * 65, "a/b", "/abs", "..", ".hidden", "nul\0byte", "café", "a b", "\udc80"])
def test_bad_names_are_refused_naming_the_argument(name):
    with pytest.raises(ValueError, match=r"share must be 1\.\.64 characters"):
        Ring(1, 1024, share=name)
    with pytest.raises(ValueError, match=r"share must be 1\.\.64 characters"):
        AudioRecord(1, 16000, 1600, device=VirtualInput("sine"), share=name)
    with pytest.raises(ValueError, match=r"name must be 1\.\.64 characters"):
        attach(name)


@pytest.mark.parametrize("name", ["", "x" * 65, "a/b", "..", ".hidden", "nul\0byte", "café", "a b"])
def test_the_public_check_and_the_native_ring_refuse_a_name_in_the_same_words(name):
    # One rule, one message: the Python check asks the native code that makes the file.
    with pytest.raises(ValueError) as public:
        Ring(1, 1024, share=name)
    with pytest.raises(ValueError) as native:
        audioring._core.FrameRing(1, 1024, np.dtype("float32"), share=name)
    assert str(native.value) == str(public.value)


@pytest.mark.parametrize("name", [None, 3, b"mic", ["mic"]])
def test_a_name_that_is_not_a_string_is_a_type_error(name):
    with pytest.raises(TypeError, match="name must be a str"):
        attach(name)
    if name is not None:  # None means "not shared"
        with pytest.raises(TypeError, match="share must be a str"):
            Ring(1, 1024, share=name)


def test_attaching_to_a_missing_name_says_so():
    with pytest.raises(FileNotFoundError, match="nope-nothing"):
        attach(unique("nope-nothing"))


def test_a_second_producer_on_a_live_name_is_refused_naming_the_owner():
    name = unique("twice")
    with Ring(1, 1024, share=name):
        with pytest.raises(FileExistsError, match=f"process {os.getpid()}"):
            Ring(1, 1024, share=name)
        with pytest.raises(FileExistsError, match=f"process {os.getpid()}"):
            AudioRecord(1, 16000, 1600, device=VirtualInput("sine"), share=name)
    # The refused producers left nothing half-made: the name is free once the owner closed.
    with Ring(1, 1024, share=name):
        pass


def test_a_closed_recorder_shares_nothing_and_its_readers_keep_their_views():
    name = unique("closed")
    rec = AudioRecord(1, 16000, 1600, device=VirtualInput("ramp"), dtype="int32", share=name)
    rec.start_recording()
    mic = attach(name)
    while mic.frames_recorded < 1600:
        time.sleep(0.005)
    view = mic.read(1600)
    copy = np.array(view)
    rec.close()
    assert rec.shared_name is None
    with pytest.raises(FileNotFoundError):
        attach(name)
    assert name not in [s.name for s in shared()]
    # The reader's mapping outlives the name: its view still reads the same frames.
    assert np.array_equal(view, copy)
    assert not mic.recording and mic.producer_alive is False
    mic.close()
    assert np.array_equal(view, copy)


def test_a_reader_cannot_write_and_a_readers_close_ends_its_waiting_streams():
    name = unique("readonly")
    with Ring(2, 4096, "int16", share=name, sampling_rate=8000) as ring:
        ring.write(np.arange(20, dtype=np.int16).reshape(10, 2))
        with attach(name) as mic:
            assert (mic.channels, mic.sampling_rate, mic.dtype, mic.capacity) == (2, 8000, np.int16, ring.capacity)
            assert mic.stats is None and mic.overflows == 0
            view = mic.read(10)
            assert view[:, 1].tolist() == list(range(1, 20, 2)) and not view.flags.writeable
            with pytest.raises(ValueError):
                view[0, 0] = 1
            with pytest.raises(RuntimeError, match="read-only"):
                mic._ring.write(np.zeros((1, 2), np.int16))
            stream = mic.stream(4096, start=mic.frames_written)
            mic.close()
            with pytest.raises(audioring.RecorderClosedError):
                next(stream)
        assert view[:, 1].tolist() == list(range(1, 20, 2))


def test_shared_lists_what_can_be_attached_with_format_and_owner():
    name = unique("listed")
    with AudioRecord(3, 22050, 2205, device=VirtualInput("sine"), dtype="int16", share=name):
        (info,) = [s for s in shared() if s.name == name]
        assert (info.pid, info.channels, info.sampling_rate, info.dtype, info.state) == (
            os.getpid(), 3, 22050, np.dtype("int16"), "recording")
    assert name not in [s.name for s in shared()]


def test_an_attached_reader_pickles_as_its_name_for_pool_workers():
    name = unique("pool")
    with AudioRecord(1, 16000, 1600, device=VirtualInput("ramp"), dtype="int32", share=name) as rec:
        while rec.frames_recorded < 1600:
            time.sleep(0.005)
        rec.stop()  # the latest frames stay put: every worker sums the same ones
        with attach(name) as mic:
            assert pickle.loads(pickle.dumps(mic)).name == name
            expected = int(np.asarray(mic.read(1600), np.int64).sum())
            for method in ("spawn", "forkserver"):
                with multiprocessing.get_context(method).Pool(2) as pool:
                    got = pool.starmap(workers.latest_sum, [(mic, 1600)] * 2)
                assert all(pid != os.getpid() and owner == os.getpid() and total == expected
                           for pid, owner, total in got), (method, got)


def _as_another_user(action) -> str:
    """Run ``action()`` in a forked child that switched to user and group 65534 (nobody); its result as text.

    A fork, not a new interpreter: the child must import nothing, since
    the interpreter and audioring may live where that user cannot read.
    """
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child calls no locks
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            text = action()
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            text = f"{type(error).__name__}: {error}"
        os.write(write_end, text.encode()[:4000])
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    return text


def test_a_recording_of_another_user_is_a_permission_error():
    if os.geteuid() != 0:
        pytest.skip("needs root to run a reader as another user")
    name = unique("private")

    def attach_it() -> str:
        attach(name)
        return "attached"

    path = shm_file(name)  # here: the child's own prefix is another user's

    def open_the_file() -> str:
        os.open(path, os.O_RDONLY)
        return "opened"

    with Ring(1, 1024, share=name):
        assert shm_file(name).stat().st_mode & 0o777 == 0o600
        by_name = _as_another_user(attach_it)
        by_path = _as_another_user(open_the_file)
    assert by_name.startswith("PermissionError") and name in by_name and "another user (uid 0)" in by_name, by_name
    # Not only audioring's word: the system itself refuses the other user the memory.
    assert by_path.startswith("PermissionError"), by_path


def test_a_file_owned_by_another_user_under_our_prefix_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file away")
    name = unique("given-away")
    with Ring(1, 1024, share=name):
        image = shm_file(name).read_bytes()
    forged = shm_file(name)
    fd = os.open(forged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, image)
        os.fchown(fd, 65534, 65534)
        with pytest.raises(PermissionError, match=name):
            attach(name)
        os.fchown(fd, 0, 0)
        os.fchmod(fd, 0o644)  # readable by others: not a private recording
        with pytest.raises(PermissionError, match=name):
            attach(name)
    finally:
        os.close(fd)
        forged.unlink()


# ---- forged and truncated files ------------------------------------------------------------------


def _valid_image() -> bytes:
    name = unique("image")
    with Ring(2, 4096, "int16", share=name) as ring:
        ring.write(np.ones((100, 2), np.int16))
        return shm_file(name).read_bytes()


IMAGE = None


def _forge(data: bytes) -> str:
    name = unique("forged")
    fd = os.open(shm_file(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return name


def _attach_forged(data: bytes) -> None:
    """Attach to a file holding ``data``: a clear error, or a reader whose reads stay in bounds."""
    name = _forge(data)
    try:
        try:
            mic = attach(name)
        except ValueError as error:
            assert name in str(error)
            return
        with mic:  # a header that passed every check must be readable without a crash
            view = mic.read(min(mic.capacity, 4096))
            mic.is_intact(view)
            mic.frame_of(view)
            try:
                mic.read(min(mic.capacity, 4096), copy=True)
            except audioring.OverrunError:
                pass  # forged counters that say the producer keeps overwriting: an error, not a crash
    finally:
        shm_file(name).unlink()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_forged_headers_give_a_clear_error_never_a_crash(data):
    global IMAGE
    if IMAGE is None:
        IMAGE = _valid_image()
    image = bytearray(IMAGE)
    page = min(4096, len(image))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, page - 1))
        image[at] = data.draw(st.integers(0, 255))
    _attach_forged(bytes(image))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3 * 4096 + 8192))
def test_truncated_files_give_a_clear_error(size):
    global IMAGE
    if IMAGE is None:
        IMAGE = _valid_image()
    if size >= len(IMAGE):
        size = len(IMAGE) - 1
    name = _forge(IMAGE[:size])
    try:
        with pytest.raises(ValueError, match=name):
            attach(name)
    finally:
        shm_file(name).unlink()


# ---- the command line ----------------------------------------------------------------------------


def test_serve_then_record_from_gives_exactly_the_served_frames(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    name, out = unique("cli"), tmp_path / "from.wav"
    cli = [sys.executable, "-m", "audioring"]
    env = {k: v for k, v in os.environ.items() if k != "PULSE_SERVER"}
    serve = subprocess.Popen([*cli, "serve", name, "-d", "virtual:ramp", "-c", "2", "-r", "48000", "-t", "int32"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while name not in [s.name for s in shared()]:
            assert serve.poll() is None and time.monotonic() < deadline, serve.communicate()
            time.sleep(0.05)
        listed = subprocess.run([*cli, "devices"], capture_output=True, text=True, timeout=60, env=env)
        record = subprocess.run([*cli, "record", str(out), "--from", name, "--seconds", "2"],
                                capture_output=True, text=True, timeout=60, env=env)
    finally:
        serve.send_signal(signal.SIGINT)
        served_out, served_err = serve.communicate(timeout=30)
    assert record.returncode == 0, record.stderr
    assert serve.returncode == 0, served_err
    assert name in listed.stdout, listed.stdout
    data, rate = soundfile.read(out, dtype="int32")
    assert rate == 48000 and data.shape == (96000, 2)
    values = data[:, 0].astype(np.int64)
    assert np.all(np.diff(values) == 1) and np.array_equal(data[:, 0], data[:, 1])
    assert "frames lost: 0" in record.stdout and f"served: {name}" in served_out
    assert not shm_file(name).exists()


def test_from_refuses_device_options_and_unknown_names(tmp_path):
    cli = [sys.executable, "-m", "audioring"]
    r = subprocess.run([*cli, "meter", "--from", "x", "--device", "virtual"], capture_output=True, text=True)
    assert r.returncode == 2 and "drop --device" in r.stderr
    r = subprocess.run([*cli, "record", str(tmp_path / "x.wav"), "--from", unique("absent")],
                       capture_output=True, text=True)
    # As an unknown --device: an argument that names nothing there (exit status 2).
    assert r.returncode == 2 and "argument --from: nothing is shared under" in r.stderr
    assert not (tmp_path / "x.wav").exists()


# ---- asyncio -------------------------------------------------------------------------------------


def test_an_attached_reader_streams_in_asyncio_losslessly_until_the_producer_closes():
    name = unique("async")

    async def main() -> np.ndarray:
        got: list[np.ndarray] = []
        with Ring(1, 4096, "int32", share=name) as ring, attach(name) as mic:
            blocks = mic.astream(100, start=0, timeout=5)

            def produce() -> None:  # from another thread, as an audio callback would
                for i in range(100):
                    ring.write(np.arange(i * 100, (i + 1) * 100, dtype=np.int32).reshape(100, 1))
                    time.sleep(0.001)
                ring.close()

            producer = threading.Thread(target=produce)
            producer.start()
            async for block in blocks:
                got.append(np.array(block[:, 0]))
            producer.join()
        return np.concatenate(got)

    values = asyncio.run(main())
    assert np.array_equal(values, np.arange(10_000))


def test_an_async_reader_learns_of_a_killed_producer_within_a_second():
    name = unique("async-killed")
    started, stop = SPAWN.Event(), SPAWN.Event()
    producer = SPAWN.Process(target=workers.ramp_producer, args=(name, 1.0, 0, 2.0, started, stop))
    producer.start()

    async def main() -> tuple[str, float]:
        mic = workers.wait_until_recording(name)
        async for _ in mic.astream(480):
            if time.monotonic() - started_streaming > 0.3 and producer.is_alive():
                os.kill(producer.pid, signal.SIGKILL)
                killed[0] = time.monotonic()
        return "ended", time.monotonic()

    killed = [0.0]
    started_streaming = time.monotonic()
    try:
        assert started.wait(60)
        with pytest.raises(audioring.ProducerLostError):
            asyncio.run(main())
        noticed = time.monotonic()
    finally:
        stop.set()
        join_all([producer])
    assert killed[0] and noticed - killed[0] < 1.0, noticed - killed[0]
