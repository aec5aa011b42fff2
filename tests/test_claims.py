"""The README's claims that no other test checks as stated: prefaulted ring memory, how soon a waiting
stream runs signal handlers, and the counts and durations the README quotes.

Counts are computed here (from the test files, the collected tests and the committed benchmark
result) and compared with the README's sentences, so that a README number cannot drift from
what it counts.
"""

from __future__ import annotations

import json
import re
import resource
import statistics
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audioring import Ring

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BENCH_README = (ROOT / "benchmarks" / "README.md").read_text()


# ---- "Pages are prefaulted so the audio thread never page-faults" --------------------------------------


def minor_faults_of_this_thread() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def minor_faults_of_a_first_pass(make_ring: Any) -> tuple[int, int]:
    """Minor page faults a warmed-up writer thread takes while writing once through a fresh ring.

    The writer first writes through a ring of its own twice, so that its stack, the interpreter's
    paths and the block are warm; the fresh ring is made by another thread, so that whatever its
    construction touches is not counted. Without prefaulting, every page of the ring faults on its
    first write: one fault per page (mirrored memory: the first half; plain memory: both copies).
    """
    block = np.ones((512, 2), dtype=np.float32)
    warm, fresh = threading.Event(), threading.Event()
    rings: dict[str, Ring] = {}
    counted: dict[str, int] = {}
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            own = make_ring()
            for _ in range(2 * own.capacity // len(block) + 1):
                own.write(block)
            own.close()
            warm.set()
            assert fresh.wait(30)
            ring = rings["fresh"]
            before = minor_faults_of_this_thread()
            for _ in range(ring.capacity // len(block) + 1):  # one full pass, and into the wrap
                ring.write(block)
            counted["faults"] = minor_faults_of_this_thread() - before
        except BaseException as error:  # noqa: BLE001 - reported to the test
            failures.append(error)
            warm.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert warm.wait(30)
    rings["fresh"] = make_ring()
    fresh.set()
    thread.join(30)
    assert not failures, failures
    ring = rings["fresh"]
    pages = ring.capacity * block.shape[1] * block.itemsize // resource.getpagesize()
    assert ring.frames_written > ring.capacity  # the pass really went through every page
    ring.close()
    return counted["faults"], pages


@pytest.mark.parametrize("memory", ["memfd", "plain", "shared"])
def test_a_fresh_ring_takes_no_page_fault_on_its_first_pass(memory):
    # Fails when prefaulting is removed (checked by hand: without MAP_POPULATE and prefault() in
    # ring_memory.cpp the same pass takes 511 faults for memfd, one per page but the first, which
    # the mirror check touches, and 1,024 for plain memory).
    if memory == "shared" and not sys.platform.startswith("linux"):
        pytest.skip("sharing needs Linux")
    name = f"claims-{uuid.uuid4().hex[:8]}"

    def make_ring() -> Ring:
        if memory == "shared":
            return Ring(2, 1 << 18, "float32", share=f"{name}-{threading.get_ident()}")
        return Ring(2, 1 << 18, "float32", mirrored=memory == "memfd")

    faults, pages = minor_faults_of_a_first_pass(make_ring)
    assert faults == 0, f"{faults} minor page faults writing the first pass through a fresh {memory} ring " \
                        f"of {pages} pages"


# ---- "A stream() waiting for audio runs signal handlers within about 20 ms" ----------------------------

#: How long a waiting stream sleeps without the GIL between looks for signals
#: (kSignalCheckInterval, csrc/bindings/ring_bindings.cpp). The README quotes it.
SIGNAL_SLICE = 0.020
#: The most any one signal may wait on a loaded 2-core machine (the slice plus scheduling).
SIGNAL_BOUND = 0.100
SIGNALS = 25

SIGNAL_CHILD = textwrap.dedent('''
    import json, os, random, signal, sys, threading, time
    from audioring import AudioRecord, VirtualInput

    rate = 8000
    source = VirtualInput("ramp", frames=100) if sys.argv[1] == "no audio" else VirtualInput("ramp")
    rec = AudioRecord(1, rate, 10 * rate, device=source)
    rec.start_recording()
    sent, handled = [], []
    signal.signal(signal.SIGUSR1, lambda *args: handled.append(time.monotonic()))


    def sender():
        rng = random.Random(0)
        for k in range(int(sys.argv[2])):
            time.sleep(rng.uniform(0.02, 0.05))  # no phase locked to the waiter's slices
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGUSR1)
            deadline = time.monotonic() + 5
            while len(handled) <= k and time.monotonic() < deadline:  # one at a time: none merge
                time.sleep(0.001)
        rec.stop()  # ends the stream


    thread = threading.Thread(target=sender)
    thread.start()
    blocks = len(list(rec.stream(10 * rate)))  # ten seconds: never complete while signals come
    thread.join()
    rec.close()
    print(json.dumps({"blocks": blocks, "sent": sent, "handled": handled}))
''')


@pytest.mark.parametrize("source", ["no audio", "audio arriving"])
def test_a_waiting_stream_runs_signal_handlers_within_its_slice(source):
    done = subprocess.run([sys.executable, "-c", SIGNAL_CHILD, source, str(SIGNALS)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["blocks"] == 0  # the stream waited all along, and stop() ended it
    assert len(report["handled"]) == len(report["sent"]) == SIGNALS, report
    delays = [handled - sent for sent, handled in zip(report["sent"], report["handled"])]
    assert min(delays) >= 0, delays
    median, worst = statistics.median(delays), max(delays)
    print(f"\n{source}: {SIGNALS} signals, handler delay median {median * 1e3:.1f} ms, max {worst * 1e3:.1f} ms")
    assert median < SIGNAL_SLICE, delays
    assert worst < SIGNAL_BOUND, delays


def test_readme_states_what_the_signal_test_checks():
    sentence = re.search(r"\*\*Signals\.\*\*(.*?)\n\n", README, flags=re.S)
    assert sentence, "README has no **Signals.** paragraph"
    text = " ".join(sentence.group(1).split())
    assert f"{SIGNAL_SLICE * 1e3:.0f} ms slices" in text, text
    assert f"{SIGNALS} signals" in text and f"median under {SIGNAL_SLICE * 1e3:.0f} ms" in text, text
    assert f"every one under {SIGNAL_BOUND * 1e3:.0f} ms" in text, text
    assert "tests/test_claims.py" in text, text


# ---- counts and durations quoted by the README ----------------------------------------------------------


def collected(test_file: str) -> list[str]:
    """The node ids pytest collects from ``test_file`` (no test runs)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           f"tests/{test_file}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def readme_number(pattern: str, text: str = README) -> int:
    """The number the README writes where ``pattern``'s group is (commas allowed)."""
    match = re.search(pattern, " ".join(text.split()))
    assert match, f"README has nothing matching {pattern!r}"
    return int(match.group(1).replace(",", ""))


def test_readme_counts_the_bad_input_cases():
    ids = collected("test_input_validation.py")
    hand_picked = [i for i in ids if "[" in i and "::test_fuzz_" not in i]
    fuzz_tests = [i for i in ids if "::test_fuzz_" in i]
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import test_input_validation
    finally:
        sys.path.remove(str(ROOT / "tests"))
    generated = len(fuzz_tests) * test_input_validation.FUZZ.max_examples
    print(f"\n{len(hand_picked)} hand-picked bad-argument cases, {generated} hypothesis-generated argument sets")
    assert readme_number(r"\*\*Bad input\*\* \(`tests/test_input_validation.py`\): ([\d,]+) hand-picked") == \
        len(hand_picked)
    assert readme_number(r"plus ([\d,]+) hypothesis-generated") == generated


def test_readme_counts_the_server_kills():
    ids = collected("test_server_faults.py")
    recording = [i for i in ids if "_dies_while_recording[" in i]
    stopped = [i for i in ids if "_dies_while_stopped" in i]
    print(f"\n{len(recording)} kills mid-recording, {len(stopped)} while stopped")
    assert readme_number(r"\(`tests/test_server_faults.py`\): (\d+) kills") == len(recording)
    assert readme_number(r"mid-recording, and (\d+) while a recorder is stopped") == len(stopped)


def test_readme_names_the_suites_run_against_the_oldest_dependencies():
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import test_dependency_range
    finally:
        sys.path.remove(str(ROOT / "tests"))
    suites = test_dependency_range.SUITES
    whole_files = [s for s in suites if "::" not in s]
    single_tests = [s for s in suites if "::" in s]
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
    text = " ".join(README.split())
    claim = "run against the oldest declared numpy and sounddevice"
    assert claim in text, "README does not say which tests run against the oldest declared dependencies"
    named = text[:text.index(claim)].rsplit(";", 1)[-1]  # the clause that says it
    for suite in whole_files:
        assert f"`{suite}`" in named, (suite, named)
    assert f"{words[len(single_tests)]} real-server tests" in named, named


def test_readme_gives_the_recorded_benchmark_time():
    results = json.loads((ROOT / "benchmarks" / "results" / "bench.json").read_text())
    assert results["mode"] == "full"
    minutes = round(results["elapsed_s"] / 60)
    print(f"\nthe committed full benchmark run took {results['elapsed_s']} s")
    assert readme_number(r"python benchmarks/run.py # about (\d+) minutes") == minutes
    assert readme_number(r"python benchmarks/run.py # full run, about (\d+) minutes", BENCH_README) == minutes
    assert f"{results['elapsed_s']:,.0f} s" in " ".join(README.split())
