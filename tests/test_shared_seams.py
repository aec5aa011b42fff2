"""What a shared recording's readers and producers trust about /dev/shm, and what they must not.

The seams of issue 17 between sharing and the file system: things planted
under this user's prefix (FIFOs, directories, symbolic links, sockets, by this
user or another), attaching while producers come and go, a producer whose
forked child outlives it, and a file shrunk under a reader. No mocks: real
files in /dev/shm, real processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audioring import OverrunError, Ring, attach, shared

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sharing needs Linux")

SHM = Path("/dev/shm")
NOBODY = 65534
# attach() waits this long for a file whose maker holds its lock but has not finished it (shared_ring.cpp).
MAKING_TIMEOUT = 5.0
_names = itertools.count()


def unique(label: str) -> str:
    """A name no other test (or test run) uses."""
    return f"seam{os.getpid()}-{next(_names)}-{label}"


def shm_file(name: str) -> Path:
    """Where this user's recording ``name`` lives."""
    return SHM / f"audioring-{os.geteuid()}-{name}"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def need_root(why: str) -> None:
    """Skip on a developer's machine, fail under CI=true (where tests never skip): ``why`` needs root."""
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail(f"{why} needs root", pytrace=False)
        pytest.skip(f"{why} needs root")


def returns_within(call: Callable[[], Any], seconds: float, fifo: Path | None = None) -> Any:
    """``call()``'s result (or exception, raised here) if it returns within ``seconds``; else a failure.

    For calls that release the GIL while they open files (attach, create). A
    call stuck in open(2) on ``fifo`` is released (by opening the FIFO's other
    end) so that the failing test does not hang the session.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo is not None:
            with contextlib.suppress(OSError):  # ENXIO: nobody is blocked opening it after all
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail(f"{call} did not return within {seconds} s (blocked opening {fifo}?)", pytrace=False)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# Lists the shared recordings; prints each name listed and each warning (listing holds the GIL: a
# listing that hangs is only safely stopped in another process).
LISTING = textwrap.dedent("""
    import warnings
    import audioring
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in audioring.shared():
            print("listed", s.name)
    for w in caught:
        print(w.category.__name__, w.message)
""")


def listing(seconds: float = 60) -> tuple[list[str], list[str]]:
    """What ``audioring.shared()`` lists and warns, from another process that must finish within ``seconds``."""
    try:
        run = subprocess.run([sys.executable, "-c", LISTING], capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"audioring.shared() did not return within {seconds} s", pytrace=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    return [line.split(" ", 1)[1] for line in lines if line.startswith("listed ")], \
        [line for line in lines if line.startswith("RuntimeWarning ")]


# ---- things that are not shared recordings, planted under this user's prefix -------------------------


def _plant(kind: str, path: Path) -> Callable[[], None]:
    """Make a ``kind`` at ``path``; return what removes it."""
    if kind == "FIFO":
        os.mkfifo(path, 0o600)
    elif kind == "directory":
        os.mkdir(path, 0o700)
        return lambda: os.rmdir(path)
    elif kind == "symbolic link":
        os.symlink("/dev/null", path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))

        def remove() -> None:
            server.close()
            path.unlink()

        return remove
    else:
        raise AssertionError(kind)
    return path.unlink


KINDS = ["FIFO", "directory", "symbolic link", "socket"]


@contextlib.contextmanager
def planted(kind: str, name: str) -> Iterator[Path]:
    path = shm_file(name)
    remove = _plant(kind, path)
    try:
        yield path
    finally:
        remove()


@pytest.mark.parametrize("kind", KINDS)
def test_attach_refuses_what_is_not_a_regular_file_at_once_naming_it(kind):
    name = unique("planted")
    with planted(kind, name) as path:
        with pytest.raises(ValueError) as refused:
            returns_within(lambda: attach(name), 10, path if kind == "FIFO" else None)
        message = str(refused.value)
        assert str(path) in message and f"is a {kind}" in message and "not a shared recording" in message, message
        assert os.path.lexists(path)  # not ours to remove: left as it was


@pytest.mark.parametrize("kind", KINDS)
def test_a_producer_refuses_a_name_taken_by_what_is_not_a_regular_file(kind):
    name = unique("taken")
    with planted(kind, name) as path:
        with pytest.raises(FileExistsError) as refused:
            returns_within(lambda: Ring(1, 1024, share=name), 10, path if kind == "FIFO" else None)
        message = str(refused.value)
        assert str(path) in message and f"is a {kind}" in message, message
        assert os.path.lexists(path)


def test_shared_skips_and_reports_each_planted_entry_and_leaves_it_in_place():
    names = {kind: unique(kind.replace(" ", "-")) for kind in KINDS}
    live = unique("live")
    with Ring(1, 1024, share=live), \
            planted("FIFO", names["FIFO"]), planted("directory", names["directory"]), \
            planted("symbolic link", names["symbolic link"]), planted("socket", names["socket"]):
        listed, reports = listing()
        assert live in listed and not set(names.values()) & set(listed), listed
        for kind, name in names.items():
            path = str(shm_file(name))
            assert [r for r in reports if path in r and f"is a {kind}" in r], (kind, reports)
            assert os.path.lexists(path)


def test_another_users_fifo_under_our_prefix_is_a_permission_error_not_a_hang():
    need_root("planting a file owned by another user")
    name = unique("their-fifo")
    with planted("FIFO", name) as path:
        os.chown(path, NOBODY, NOBODY)
        os.chmod(path, 0o666)  # as `mkfifo -m 666` by that user
        with pytest.raises(PermissionError) as refused:
            returns_within(lambda: attach(name), 10, path)
        message = str(refused.value)
        assert str(path) in message and "is a FIFO" in message and f"user {NOBODY}" in message, message
        with pytest.raises(PermissionError, match="is a FIFO"):
            returns_within(lambda: Ring(1, 1024, share=name), 10, path)
        listed, reports = listing()
        assert name not in listed and [r for r in reports if str(path) in r and "is a FIFO" in r], reports


def test_record_from_a_planted_fifo_fails_at_once_naming_it(tmp_path):
    name = unique("cli-fifo")
    with planted("FIFO", name) as path:
        try:
            run = subprocess.run([sys.executable, "-m", "audioring", "record", str(tmp_path / "x.wav"), "--from", name],
                                 capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):  # a reader still blocked in open(2) is released
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail("`audioring record --from` hung on a FIFO", pytrace=False)
    assert run.returncode != 0 and "is a FIFO" in run.stderr and str(path) in run.stderr, run.stderr
    assert not (tmp_path / "x.wav").exists()


# Shares a Ring until told to close it, then says so.
CLOSING_PRODUCER = textwrap.dedent("""
    import sys
    import audioring
    ring = audioring.Ring(1, 1024, share=sys.argv[1])
    print("shared", flush=True)
    sys.stdin.readline()
    ring.close()
    print("closed", flush=True)
""")


def test_a_producer_whose_name_now_holds_a_fifo_closes_at_once_and_leaves_the_fifo():
    # Closing checks that the name still names its own file before unlinking it: that check must not open a FIFO
    # put there meanwhile (here by this user; another user can plant one once the name is gone) in a blocking way.
    name = unique("swapped")
    with subprocess.Popen([sys.executable, "-c", CLOSING_PRODUCER, name], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as producer:
        assert producer.stdout.readline() == "shared\n", producer.stderr.read()
        path = shm_file(name)
        path.unlink()
        os.mkfifo(path, 0o600)
        try:
            out, err = producer.communicate(input="\n", timeout=30)
        except subprocess.TimeoutExpired:
            producer.kill()
            pytest.fail("closing a producer hung on the FIFO now at its name", pytrace=False)
        finally:
            assert stat.S_ISFIFO(path.lstat().st_mode)  # not the producer's to unlink
            path.unlink()
    assert producer.returncode == 0 and out == "closed\n", err


# ---- attaching while a producer makes its file ---------------------------------------------------------

# Creates and closes a shared Ring of one name over and over until its stdin closes; prints how often.
CHURN = textwrap.dedent("""
    import os, sys, threading
    import audioring
    name, made, done = sys.argv[1], 0, threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print("ready", flush=True)
    while not done.is_set():
        with audioring.Ring(1, 1024, share=name):
            made += 1
    print(made, flush=True)
""")


def test_attaching_during_create_and_close_churn_never_calls_the_file_forged():
    name, attaches = unique("churn"), 20_000
    producer = subprocess.Popen([sys.executable, "-c", CHURN, name], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outcomes = {"attached": 0, "not found": 0}
    errors: list[str] = []
    try:
        assert producer.stdout.readline() == "ready\n", producer.stderr.read()
        for i in range(attaches):
            try:
                attach(name).close()
                outcomes["attached"] += 1
            except FileNotFoundError:
                outcomes["not found"] += 1
            except (ValueError, OSError) as error:  # "forged", or anything else
                errors.append(f"{type(error).__name__}: {error}")
            if i % 500 == 0:  # listing while the name churns: no warning, and the producer never fails
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    shared()
    finally:
        made, stderr = producer.communicate(input="", timeout=60)
    assert producer.returncode == 0, stderr
    assert not errors, f"{len(errors)} of {attaches} attaches failed, e.g. {errors[:3]}"
    # Not vacuous: the name came and went under the readers.
    assert outcomes["attached"] > 0 and outcomes["not found"] > 0 and int(made) > 100, (outcomes, made)


def _ofd_write_lock(fd: int) -> None:
    """An open-file-description write lock on the whole file, as a producer holds its file."""
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (and padding).
    lock = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock)


def _valid_image() -> bytes:
    name = unique("image")
    with Ring(2, 4096, "int16", share=name) as ring:
        ring.write(np.arange(200, dtype=np.int16).reshape(100, 2))
        return shm_file(name).read_bytes()


def _opened_by_this_process(path: Path) -> int:
    """How many of this process's descriptors are open on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return count


def test_a_file_its_maker_holds_locked_and_empty_is_not_there_yet_never_forged():
    name = unique("being-made")
    path = shm_file(name)
    # A 0-byte file held with the lock, as a producer holds it between taking the lock and writing the header.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _ofd_write_lock(fd)
        started = time.monotonic()
        with pytest.raises(FileNotFoundError) as refused:
            attach(name)
        waited = time.monotonic() - started
        assert name in str(refused.value) and "being made" in str(refused.value), refused.value
        assert MAKING_TIMEOUT - 0.5 <= waited < MAKING_TIMEOUT + 5, waited  # waited for it, and no longer
        # Listing skips it silently: it is nobody's error.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert name not in [s.name for s in shared()]
        assert path.exists()

        # Finished while a reader waits: the reader gets the recording.
        got: dict[str, Any] = {}
        reader = threading.Thread(target=lambda: got.update(mic=attach(name)))
        reader.start()
        while _opened_by_this_process(path) < 2 and reader.is_alive():  # the reader has it open: waiting
            time.sleep(0.001)
        os.pwrite(fd, _valid_image(), 0)
        reader.join(30)
        with got["mic"] as mic:
            assert (mic.channels, mic.dtype, mic.read(100)[:, 1].tolist()) == (2, np.int16, list(range(1, 200, 2)))
    finally:
        os.close(fd)
        path.unlink()


# ---- a producer that forked, then died ------------------------------------------------------------------

# Shares a Ring, forks a child that inherits every descriptor, prints the child's pid and waits.
FORKING_PRODUCER = textwrap.dedent("""
    import os, sys
    import audioring
    ring = audioring.Ring(1, 1024, share=sys.argv[1])
    child = os.fork()
    if child == 0:
        os.read(0, 1)  # until the test closes our stdin
        os._exit(0)
    print(child, flush=True)
    os.read(0, 1)
""")


def test_a_killed_producers_forked_child_does_not_keep_the_name():
    name = unique("forked")
    with subprocess.Popen([sys.executable, "-c", FORKING_PRODUCER, name], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as producer:
        child = 0
        try:
            child = int(producer.stdout.readline())
            assert name in [s.name for s in shared()]
            producer.kill()
            producer.wait(30)
            os.kill(child, 0)  # the child lives on, with the producer's descriptors and mappings
            assert name not in [s.name for s in shared()]
            with Ring(1, 1024, share=name):  # the name is free
                (info,) = [s for s in shared() if s.name == name]
                assert info.pid == os.getpid()
        finally:
            if child:
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ---- header fields changed after attach() checked them ---------------------------------------------------

FIRST_FRAME_OFFSET = 80  # SharedHeader::first_frame (shared_header.hpp, layout version 1)


@pytest.mark.parametrize("forged", [-(2**63), -1, 2**63 - 1])
def test_a_first_frame_overwritten_after_attach_stays_within_what_attach_accepts(forged):
    # attach() checks first_frame (0..2^62); another process of the user can overwrite it later. A reader keeps
    # it within those bounds, so that streams and frame arithmetic on it stay defined (no signed overflow).
    name = unique("first-frame")
    with Ring(1, 4096, "int16", share=name) as ring, attach(name) as mic:
        ring.write(np.arange(100, dtype=np.int16).reshape(100, 1))
        fd = os.open(shm_file(name), os.O_RDWR)
        try:
            os.pwrite(fd, struct.pack("q", forged), FIRST_FRAME_OFFSET)
        finally:
            os.close(fd)
        assert 0 <= mic.first_frame <= 2**62
        if mic.first_frame == 0:
            block = next(iter(mic.stream(10, timeout=2.0)))
            assert block[:, 0].tolist() == list(range(10))
        else:  # nothing is there yet: no block (an end or a timeout), and no crash
            with contextlib.suppress(TimeoutError):
                assert next(iter(mic.stream(10, timeout=0.05)), None) is None


INTENT_OFFSET, WRITTEN_OFFSET = 128, 192  # SharedHeader::control's intent and written (ring_control.hpp)


@pytest.mark.parametrize("forged", [-(2**63), 2**63 - 1])
@pytest.mark.parametrize("counter", ["intent", "written"])
def test_frame_counters_overwritten_after_attach_keep_reads_defined(counter, forged):
    # The same for the counters every read and stream computes with: bounded to what attach() accepts, so a
    # forged one can make reads wrong (the same user can write the frames too) but never undefined (UBSan
    # runs this file) nor a crash.
    name = unique(f"forged-{counter}")
    with Ring(1, 4096, "int16", share=name) as ring, attach(name) as mic:
        ring.write(np.arange(100, dtype=np.int16).reshape(100, 1))
        view = mic.read(10)
        fd = os.open(shm_file(name), os.O_RDWR)
        try:
            os.pwrite(fd, struct.pack("q", forged), INTENT_OFFSET if counter == "intent" else WRITTEN_OFFSET)
        finally:
            os.close(fd)
        assert 0 <= mic.frames_written <= 2**62
        assert isinstance(mic.is_intact(view), bool)
        assert mic.read(10).shape == (10, 1)
        with contextlib.suppress(TimeoutError, OverrunError):
            next(iter(mic.stream(10, timeout=0.05)), None)


# ---- the same user shrinking the file under a reader ----------------------------------------------------

# Attaches, reads, says so, then reads again once told the file was truncated.
TRUNCATED_READER = textwrap.dedent("""
    import sys
    import numpy as np
    import audioring
    mic = audioring.attach(sys.argv[1])
    view = mic.read(mic.capacity)
    print(int(np.asarray(view, np.int64).sum()), flush=True)
    sys.stdin.readline()
    print(int(np.asarray(view, np.int64).sum()), flush=True)
""")


def test_a_same_user_truncating_the_file_kills_its_readers_with_sigbus_as_documented():
    name = unique("truncated")
    with Ring(1, 4096, "int32", share=name) as ring:
        ring.write(np.ones((ring.capacity, 1), np.int32))
        reader = subprocess.Popen([sys.executable, "-c", TRUNCATED_READER, name], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert int(reader.stdout.readline()) == ring.capacity, reader.stderr.read()
        os.truncate(shm_file(name), os.sysconf("SC_PAGE_SIZE"))  # the header's page stays, the frames go
        _, stderr = reader.communicate(input="\n", timeout=60)
    assert reader.returncode == -signal.SIGBUS, (reader.returncode, stderr)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "kills its readers with SIGBUS" in readme

