"""record_to(): recordings written into audio files by the native writer thread.

Every recording here is a ramp (each frame holds its number), so a file's
content tells exactly which frames it holds: continuity through every
format and split boundary, the exact position and length of every gap.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audioring import AudioRecord, FileWriter, Gap, Ring, VirtualInput, attach
from audioring._file_formats import FORMATS
from recording import RAMP_MODULUS, gil_stall, redo_until_stalled

RATE = 48000


def read_frames(path: str, writer: FileWriter, channels: int, dtype: str) -> np.ndarray:
    """The samples of one file as the ring held them (8-bit ones restored from the 16-bit read)."""
    if writer.format == "raw":
        kind = {"FLOAT": "float32", "PCM_32": "int32", "PCM_16": "int16", "PCM_S8": "int8", "PCM_U8": "uint8"}
        return np.fromfile(path, dtype=kind[writer.subtype]).reshape(-1, channels).astype(dtype)
    if dtype in ("int8", "uint8"):
        wide = soundfile.read(path, dtype="int16", always_2d=True)[0] >> 8
        return (wide + 128).astype("uint8") if dtype == "uint8" else wide.astype("int8")
    return soundfile.read(path, dtype=dtype, always_2d=True)[0]


def joined(writer: FileWriter, channels: int, dtype: str) -> np.ndarray:
    return np.concatenate([read_frames(f, writer, channels, dtype) for f in writer.files])


def counters(frames: np.ndarray) -> np.ndarray:
    column = frames[:, 0]
    if column.dtype == np.float32:
        return column.astype(np.int64)
    return column.view(np.dtype(f"u{column.dtype.itemsize}")).astype(np.int64)


def assert_ramp(frames: np.ndarray, dtype: str) -> None:
    """Consecutive frame numbers (modulo the ramp's), identical in every channel."""
    steps = np.diff(counters(frames)) % RAMP_MODULUS[dtype]
    assert np.all(steps == 1), f"the ramp jumps at frames {np.flatnonzero(steps != 1)[:5]}"
    assert np.all(frames == frames[:, :1])


def ramp_recorder(channels: int = 2, dtype: str = "int16", speed: float = 10.0, seconds: float = 1.0) -> AudioRecord:
    return AudioRecord(channels, RATE, int(RATE * seconds), device=VirtualInput("ramp", speed=speed), dtype=dtype)


CASES = [(fmt, dtype) for fmt in FORMATS for dtype in ("float32", "int32", "int16", "int8", "uint8")
         if FORMATS[fmt]["default_subtypes"][dtype] is not None and not (fmt == "flac" and dtype == "float32")]


@pytest.mark.parametrize(("fmt", "dtype"), CASES)
def test_every_format_holds_the_ramp_exactly(tmp_path: Path, fmt: str, dtype: str) -> None:
    with ramp_recorder(3, dtype) as rec, rec.record_to(tmp_path / f"take.{fmt}", frames=20000) as writer:
        assert writer.wait(timeout=10.0)
        device_frame = writer.start - rec.first_frame  # the ramp counts the device's frames
    frames = joined(writer, 3, dtype)
    assert writer.format == fmt and writer.end == "frames_done" and writer.gaps == []
    assert len(frames) == writer.frames == 20000
    assert_ramp(frames, dtype)
    assert counters(frames)[0] == device_frame % RAMP_MODULUS[dtype]


@pytest.mark.parametrize("split", [7001, "0.25s", "96KiB"])
def test_split_parts_join_into_exactly_the_recording(tmp_path: Path, split: object) -> None:
    with ramp_recorder(2, "int16", speed=20) as rec, rec.record_to(tmp_path / "take.wav", split=split,
                                                                      frames=50000) as writer:
        assert writer.wait(timeout=10.0)
    part = {7001: 7001, "0.25s": RATE // 4, "96KiB": 96 * 1024 // 4}[split]  # type: ignore[index]
    assert writer.files == [str(tmp_path / f"take-{k:04d}.wav") for k in range(1, len(writer.files) + 1)]
    lengths = [soundfile.info(f).frames for f in writer.files]
    assert lengths == [part] * (50000 // part) + ([50000 % part] if 50000 % part else [])
    frames = joined(writer, 2, "int16")
    assert len(frames) == 50000
    assert_ramp(frames, "int16")


def test_a_small_wav_stays_riff_with_wave_format_extensible_and_a_bext_time(tmp_path: Path) -> None:
    with ramp_recorder(6, "int32") as rec:
        before = time.time()
        with rec.record_to(tmp_path / "take.wav", split=10000, frames=20000) as writer:
            assert writer.wait(timeout=10.0)
    first, second = (Path(f).read_bytes() for f in writer.files)
    assert first[:4] == b"RIFF" and first[8:12] == b"WAVE"
    fmt = first.index(b"fmt ")
    assert int.from_bytes(first[fmt + 8:fmt + 10], "little") == 0xFFFE  # WAVE_FORMAT_EXTENSIBLE
    references = []
    for data in (first, second):
        bext = data.index(b"bext") + 8
        date = data[bext + 320:bext + 330].decode()
        clock = data[bext + 330:bext + 338].decode()
        references.append(int.from_bytes(data[bext + 338:bext + 346], "little"))
        stamped = time.mktime(time.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S"))
        assert before - 60 < stamped < time.time() + 60
    # The parts line up: the second begins exactly 10,000 samples after the first.
    assert references[1] - references[0] == 10000


def test_past_4_gib_a_wav_becomes_rf64_and_reads_back_whole(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if os.statvfs(shm).f_bavail * os.statvfs(shm).f_frsize < 6 * 2**30:
        pytest.skip("needs 6 GiB free on /dev/shm for a file past 4 GiB")
    channels, block = 256, 4096  # 1 KiB frames: 4 GiB is 4 Mi frames
    total = 2**22 + 3 * block
    ring = Ring(channels=channels, capacity=8 * block, dtype="int32", sampling_rate=RATE)
    path = shm / f"audioring-rf64-{os.getpid()}.wav"
    ramp = np.repeat(np.arange(block, dtype=np.int32)[:, None], channels, axis=1)
    try:
        with ring, ring.record_to(path, frames=total) as writer:
            for start in range(0, total, block):
                while writer.lag > 4 * block:  # the test's producer waits: this test is about the file
                    time.sleep(0.001)
                ring.write(ramp + start)
            assert writer.wait(timeout=120.0)
        assert writer.gaps == [] and writer.frames == total
        with open(path, "rb") as f:
            assert f.read(4) == b"RF64"
        info = soundfile.info(str(path))
        assert info.frames == total and path.stat().st_size > 2**32
        tail = soundfile.read(str(path), start=total - block, dtype="int32")[0]
        assert np.array_equal(tail[:, 0], np.arange(total - block, total, dtype=np.int32))
    finally:
        path.unlink(missing_ok=True)


def test_a_writer_that_falls_behind_writes_each_gap_as_silence_of_its_exact_length(tmp_path: Path) -> None:
    # A FIFO read slowly is a disk that cannot keep up: the producer laps the ring.
    fifo = tmp_path / "slow.au"
    os.mkfifo(fifo)
    reader = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "f = open(sys.argv[1], 'rb'); out = open(sys.argv[2], 'wb')\n"
        "time.sleep(0.8)\n"
        "while chunk := f.read(65536): out.write(chunk)\n"
    ), str(fifo), str(tmp_path / "copy.au")])
    ring = Ring(channels=1, capacity=8192, dtype="int32", sampling_rate=RATE)
    total = 300_000
    deadline = time.monotonic() + 30
    while True:  # until the reader has the FIFO open (a slow start: sanitizers, a loaded machine)
        try:
            writer = ring.record_to(fifo, frames=total)
            break
        except OSError as error:
            assert "a FIFO with no reader" in str(error) and time.monotonic() < deadline, error
            time.sleep(0.02)
    with ring, writer:
        for start in range(0, total, 1000):
            ring.write(np.arange(start, start + 1000, dtype=np.int32)[:, None] + 1)  # +1: silence is 0
            time.sleep(0.0005)
        assert writer.wait(timeout=30.0)
    assert reader.wait(timeout=30) == 0
    frames = soundfile.read(str(tmp_path / "copy.au"), dtype="int32")[0]
    assert len(frames) == total == writer.frames
    assert writer.gaps, "the slow reader should have made the writer lose frames"
    assert writer.frames_lost == sum(gap.length for gap in writer.gaps)
    silent = np.zeros(total, dtype=bool)
    for gap in writer.gaps:
        assert isinstance(gap, Gap) and gap.seconds == gap.frame / RATE
        silent[gap.frame:gap.frame + gap.length] = True
    assert np.all(frames[silent] == 0)
    # Every other frame is the frame the producer wrote at that position: positions stayed true.
    assert np.array_equal(frames[~silent], np.flatnonzero(~silent) + 1)


def test_gaps_are_listed_in_a_csv_next_to_the_file_as_they_happen(tmp_path: Path) -> None:
    ring = Ring(channels=1, capacity=4096, dtype="int16", sampling_rate=RATE)
    with ring, ring.record_to(tmp_path / "take.wav") as writer:
        ring.write(np.ones((20000, 1), dtype=np.int16))  # laps the ring before the writer can start
        deadline = time.monotonic() + 5
        while not writer.gaps and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.gaps
        log = (tmp_path / "take.gaps.csv").read_text().splitlines()
        assert writer.gap_log == str(tmp_path / "take.gaps.csv")
    assert log[0] == "frame,length,seconds,file"
    first = log[1].split(",")
    gap = writer.gaps[0]
    assert (int(first[0]), int(first[1]), first[3]) == (gap.frame, gap.length, str(tmp_path / "take.wav"))


def test_record_to_loses_nothing_while_python_holds_the_gil(tmp_path: Path) -> None:
    # A 1 s ring and a 2.5 s GIL hold: only a writer that never needs the GIL keeps every frame.
    def run(aim: float) -> dict:
        stall = gil_stall(aim)
        with ramp_recorder(8, "int32", speed=1.0, seconds=1.0) as rec:
            writer = rec.record_to(tmp_path / "held.wav")
            held = stall()
            writer.close()
        return {"held": held, "writer": writer}

    result = redo_until_stalled(2.5, run)
    writer = result["writer"]
    assert result["held"] >= 2.5
    assert writer.gaps == [] and writer.error is None
    frames = joined(writer, 8, "int32")
    assert len(frames) == writer.frames > 2.5 * RATE
    assert_ramp(frames, "int32")


def test_pre_roll_starts_the_file_in_the_past(tmp_path: Path) -> None:
    with ramp_recorder(1, "int16", speed=10) as rec:
        while rec.frames_written - rec.first_frame < RATE // 2:
            time.sleep(0.01)
        start = rec.frames_written - 10000
        with rec.record_to(tmp_path / "take.flac", start=start, frames=30000) as writer:
            assert writer.wait(timeout=10.0)
        device_start = start - rec.first_frame  # the ramp counts the device's frames
    frames = joined(writer, 1, "int16")
    assert writer.start == start and len(frames) == 30000
    assert counters(frames)[0] == device_start % RAMP_MODULUS["int16"]
    assert_ramp(frames, "int16")


def test_stopping_the_recorder_ends_the_file_with_everything_recorded(tmp_path: Path) -> None:
    with ramp_recorder(2, "int16", speed=10) as rec:
        writer = rec.record_to(tmp_path / "take.w64")
        time.sleep(0.3)
        rec.stop()
        assert writer.wait(timeout=10.0)
        recorded = rec.frames_written - writer.start
    assert writer.end == "finished" and writer.frames == recorded > 0
    assert_ramp(joined(writer, 2, "int16"), "int16")


def test_a_restart_ends_the_file_and_never_writes_its_zeros(tmp_path: Path) -> None:
    ring = Ring(channels=1, capacity=4096, dtype="int16", sampling_rate=RATE)
    with ring, ring.record_to(tmp_path / "take.wav") as writer:
        ring.write(np.arange(1, 1001, dtype=np.int16)[:, None])
        deadline = time.monotonic() + 5
        while writer.frames < 1000 and time.monotonic() < deadline:
            time.sleep(0.005)
        ring.clear()
        assert writer.wait(timeout=5.0)
    assert writer.end == "restarted" and writer.gaps == []
    assert np.array_equal(joined(writer, 1, "int16")[:, 0], np.arange(1, 1001))


def test_stop_and_start_end_the_file_at_the_stop(tmp_path: Path) -> None:
    with ramp_recorder(1, "int16", speed=10) as rec:
        writer = rec.record_to(tmp_path / "take.wav")
        time.sleep(0.2)
        rec.stop()
        rec.start_recording()
        assert writer.wait(timeout=10.0)
    assert writer.end == "finished"
    assert_ramp(joined(writer, 1, "int16"), "int16")


def test_an_attached_reader_writes_until_its_producer_stops(tmp_path: Path) -> None:
    name = f"writer-{os.getpid()}"
    rec = AudioRecord(2, RATE, RATE, device=VirtualInput("ramp", speed=10), dtype="int32", share=name)
    with rec:
        rec.start_recording()
        with attach(name) as mic:
            writer = mic.record_to(tmp_path / "shared.caf")
            time.sleep(0.3)
            rec.stop()
            assert writer.wait(timeout=10.0)
            recorded = mic.frames_written - writer.start
    assert writer.end == "producer_stopped" and writer.frames == recorded > 0
    assert_ramp(joined(writer, 2, "int32"), "int32")


def test_a_full_disk_ends_with_one_line_naming_the_os_error_and_a_valid_file(tmp_path: Path) -> None:
    script = (
        "import time, soundfile, numpy as np\n"
        "from audioring import Ring\n"
        "ring = Ring(channels=8, capacity=1 << 16, dtype='int32', sampling_rate=48000)\n"
        "writer = ring.record_to('full/take.wav')\n"
        "block = np.ones((4096, 8), dtype=np.int32)\n"
        "while writer.end == 'running':\n"
        "    while writer.lag > 8192: time.sleep(0.001)\n"
        "    ring.write(block)\n"
        "try:\n"
        "    writer.close()\n"
        "except OSError as error:\n"
        "    print('RAISED', error)\n"
        "print('ERROR', writer.error)\n"
        "print('FRAMES', writer.frames, soundfile.info('full/take.wav').frames)\n"
    )
    (tmp_path / "full").mkdir()
    run = subprocess.run(["unshare", "-m", "sh", "-c",
                          f"mount -t tmpfs -o size=2m tmpfs full && {sys.executable} -c \"$0\"", script],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert lines["ERROR"] == "cannot write full/take.wav: No space left on device"
    assert lines["RAISED"] == lines["ERROR"]
    written, readable = map(int, lines["FRAMES"].split())
    assert 0 < readable == written and written * 32 <= 2 * 2**20  # 8 x int32 frames in a 2 MiB filesystem


def test_outputs_that_cannot_be_written_are_refused_before_anything_is_recorded(tmp_path: Path) -> None:
    ring = Ring(channels=2, capacity=4096, dtype="int16", sampling_rate=RATE)
    with pytest.raises(OSError, match="No such file or directory"):
        ring.record_to(tmp_path / "missing" / "take.wav")
    with pytest.raises(OSError, match="Is a directory"):
        ring.record_to(tmp_path, format="wav")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="FIFO.*use format='au' or 'raw'"):
        ring.record_to(fifo, format="wav")
    with pytest.raises(OSError, match="a FIFO with no reader; start the reader first"):
        ring.record_to(fifo, format="au")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with ring.record_to(tmp_path / "ok.wav", frames=10) as writer:  # still usable
        ring.write(np.zeros((10, 2), dtype=np.int16))
        assert writer.wait(timeout=5.0)


def test_bad_arguments_name_the_argument_and_a_format_that_fits(tmp_path: Path) -> None:
    wide = Ring(channels=64, capacity=4096, dtype="int32", sampling_rate=RATE)
    with pytest.raises(ValueError, match="FLAC holds at most 8 channels, got 64; use format='wav' or format='rf64'"):
        wide.record_to(tmp_path / "take.flac")
    with pytest.raises(ValueError, match=r"FLAC holds at most 24 bits.*use format='wav' or format='rf64'.*"
                                         r"subtype='PCM_24'"):
        Ring(channels=2, capacity=4096, dtype="int32", sampling_rate=RATE).record_to(tmp_path / "take.flac")
    with pytest.raises(ValueError, match="cannot tell the format from"):
        wide.record_to(tmp_path / "take.mp3")
    with pytest.raises(ValueError, match="format must be one of wav, rf64, w64, caf, flac, au, raw"):
        wide.record_to(tmp_path / "take.wav", format="ogg")
    with pytest.raises(ValueError, match="subtype for WAV must be one of"):
        wide.record_to(tmp_path / "take.wav", subtype="PCM_S8")
    with pytest.raises(ValueError, match="split must be a duration"):
        wide.record_to(tmp_path / "take.wav", split="1 fortnight")
    with pytest.raises(TypeError, match="split must be frames"):
        wide.record_to(tmp_path / "take.wav", split=1.5)
    with pytest.raises(ValueError, match="split must be at least one frame"):
        wide.record_to(tmp_path / "take.wav", split="1B")
    with pytest.raises(ValueError, match=r"AU file holds at most .* s of this audio \(4 GiB\) and the recording has "
                                         r"no end: give frames= or a split within that, or use format='wav'"):
        wide.record_to(tmp_path / "take.au")
    with pytest.raises(ValueError, match="frames must be"):
        wide.record_to(tmp_path / "take.wav", frames=0)
    with pytest.raises(ValueError, match=r"start must be within what the ring holds of this recording, 0\.\.0"):
        wide.record_to(tmp_path / "take.wav", start=5)
    with pytest.raises(ValueError, match="needs the ring's sampling_rate"):
        Ring(channels=1, capacity=4096, dtype="int16").record_to(tmp_path / "take.wav")
    assert not list(tmp_path.iterdir())  # nothing was created by a refusal
    with AudioRecord(1, RATE, RATE, device=VirtualInput("sine")) as rec:
        rec.stop()
        with pytest.raises(RuntimeError, match=r"record_to\(\) needs a recording"):
            rec.record_to(tmp_path / "take.wav")


def test_a_writer_left_open_completes_its_file_at_exit(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from audioring import AudioRecord, VirtualInput\n"
        "rec = AudioRecord(2, 48000, 48000, device=VirtualInput('ramp', speed=10), dtype='int16')\n"
        "rec.start_recording()\n"
        "writer = rec.record_to(sys.argv[1])\n"
        "time.sleep(0.3)\n"
    )
    path = tmp_path / "exit.wav"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    frames = soundfile.read(str(path), dtype="int16", always_2d=True)[0]
    assert len(frames) > 1000
    assert_ramp(frames, "int16")


def test_many_writers_on_one_recording_in_threads(tmp_path: Path) -> None:
    with ramp_recorder(2, "int16", speed=10) as rec:
        writers: list[FileWriter] = []
        threads = [threading.Thread(target=lambda k=k: writers.append(
            rec.record_to(tmp_path / f"t{k}.wav", frames=20000))) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for writer in writers:
            assert writer.wait(timeout=10.0)
    for writer in writers:
        assert writer.gaps == []
        assert_ramp(joined(writer, 2, "int16"), "int16")


def test_a_killed_process_leaves_a_file_whose_header_misses_at_most_a_second(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from audioring import AudioRecord, VirtualInput\n"
        "rec = AudioRecord(2, 48000, 48000, device=VirtualInput('ramp'), dtype='int32')\n"
        "rec.start_recording()\n"
        "writer = rec.record_to(sys.argv[1])\n"
        "print('writing', flush=True)\n"
        "time.sleep(60)\n"
    )
    path = tmp_path / "killed.wav"
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    time.sleep(2.6)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    frames = soundfile.read(str(path), dtype="int32", always_2d=True)[0]
    assert len(frames) >= RATE  # 2.6 s recorded; the header is updated about once a second
    assert_ramp(frames, "int32")


def test_ctrl_c_interrupts_a_wait_for_the_writer(tmp_path: Path) -> None:
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored\n"
        "from audioring import AudioRecord, VirtualInput\n"
        "with AudioRecord(1, 48000, 48000, device=VirtualInput('sine'), dtype='int16') as rec:\n"
        "    writer = rec.record_to(sys.argv[1])\n"
        "    print('waiting', flush=True)\n"
        "    try:\n"
        "        writer.wait()\n"
        "    except KeyboardInterrupt:\n"
        "        print('interrupted', writer.end, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "w.wav")], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline() == "waiting\n"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out == "interrupted running\n" and proc.returncode == 0
    assert soundfile.info(str(tmp_path / "w.wav")).frames > 0


def test_a_reader_of_a_producer_not_started_yet_writes_its_first_recording_from_its_first_frame(
        tmp_path: Path) -> None:
    name = f"pending-{os.getpid()}"
    rec = AudioRecord(2, RATE, RATE, device=VirtualInput("ramp", speed=10), dtype="int32", share=name)
    try:
        mic = attach(name)  # before the producer starts (entering `with rec` would start it)
        writer = mic.record_to(tmp_path / "pending.wav")
        time.sleep(0.1)
        assert writer.frames == 0 and writer.end == "running"
        rec.start_recording()
        time.sleep(0.3)
        rec.stop()
        assert writer.wait(timeout=10.0)
        assert writer.start == rec.first_frame
        mic.close()
    finally:
        rec.close()
    frames = joined(writer, 2, "int32")
    assert writer.end == "producer_stopped" and len(frames) == writer.frames > 0
    assert counters(frames)[0] == 0  # the device's first frame
    assert_ramp(frames, "int32")
