"""Frames lost, judged from the content of recorded files: the ``unit`` ramp (``harness/ramp.py``) read back.

Every recorder of the disk case records the same ramp into every channel, so
what it lost is measured the same way for all, from its files alone: no
recorder's own counters are trusted. A recording may be several files (a
recorder that splits, such as jack_capture at WAV's 4 GiB): they are read in
order as one stream, so a frame missing or repeated at a boundary counts.

Two ways a recorder can lose frames, both counted:

* dropped: the file simply goes on with later frames (the ramp jumps, and
  the file's timeline is shorter than the time it spans from then on);
* replaced by silence of the same length (jack_capture, audioring's writer):
  the ramp jumps across zeros, and the timeline stays true.

And one way the ramp's own source (a Python JACK client) can fail: missing a
JACK cycle, after which JACK delivers its previous output again. That shows as
a step back and a return to the clock, the same in every recorder's file, and
is counted apart (`source_glitch_frames`), never as lost.

Only channel 0 and the last channel are decoded (every frame is read anyway:
a frame's channels lie side by side); the last must equal channel 0 from the
moment both ramps arrived (the ramp client connects port after port).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.ramp import UNIT_MODULO, unit_values

#: Frames read at a time (at 256 int32 channels, 64 MiB).
BLOCK_FRAMES = 1 << 16


def _read_edges(path: Path) -> tuple:
    """(info dict, channel 0, last channel) of one file, the channels as unit-ramp values."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        info = {"path": str(path), "format": f.format, "subtype": f.subtype, "channels": f.channels,
                "samplerate": f.samplerate, "frames": f.frames, "bytes": path.stat().st_size}
        dtype = "float64" if f.subtype in ("FLOAT", "DOUBLE") else "int32"
        first, last = [], []
        for block in f.blocks(blocksize=BLOCK_FRAMES, dtype=dtype, always_2d=True):
            first.append(unit_values(block[:, 0]))
            last.append(unit_values(block[:, -1]))
    empty = np.zeros(0, np.int64)
    return info, (np.concatenate(first) if first else empty), (np.concatenate(last) if last else empty)


def _signed(step: int) -> int:
    """A difference of ramp values, modulo the ramp, as the signed step it is (within half the ramp)."""
    step %= UNIT_MODULO
    return step - UNIT_MODULO if step > UNIT_MODULO // 2 else step


def ramp_report(values: np.ndarray) -> dict:
    """What a recorded unit ramp (values 1 .. UNIT_MODULO, 0 for silence) says was lost, repeated or shifted.

    Each non-silent frame's offset (ramp value minus its position in the file) stays constant while nothing is
    lost. A recorder that drops frames moves it forward for good (`dropped_frames`); one that writes silence
    instead keeps it (`silence_inside_frames`); both are lost. A stretch that is an exact copy of the frames just
    before it (its offset back by exactly its own length, or by the stretches of copies before it plus its own)
    is the ramp's source missing JACK cycles, when JACK repeats the source's last output: `source_glitch_frames`,
    not the recorder's, and the offset after it is compared with the one before it, so a drop right after is
    still counted. Any other step back is frames recorded twice (`repeated_frames`).
    """
    nonzero = np.flatnonzero(values)
    if len(nonzero) < 2:
        return {"frames_checked": 0, "error": "no ramp in the recording"}
    offsets = (values[nonzero] - nonzero) % UNIT_MODULO
    starts = np.concatenate([[0], np.flatnonzero(np.diff(offsets)) + 1])
    run_offsets = offsets[starts].tolist()
    run_lengths = np.diff(np.concatenate([starts, [len(offsets)]])).tolist()
    dropped = repeated = glitch_frames = glitches = largest = 0
    current = run_offsets[0]
    copies = 0  # frames of the copies in a row just before this run
    for offset, length in zip(run_offsets[1:], run_lengths[1:]):
        step = _signed(offset - current)
        if step == -(copies + length):  # a copy of the `length` frames before it
            glitches += copies == 0
            glitch_frames += length
            copies += length
            continue
        copies = 0
        if step > 0:
            dropped += step
            largest = max(largest, step)
        else:
            repeated -= step
        current = offset
    checked = int(nonzero[-1] - nonzero[0] + 1)  # leading and trailing silence left out (before the ramp came)
    silence = checked - len(nonzero)
    return {
        "frames_checked": checked,
        "leading_silence_frames": int(nonzero[0]),
        "trailing_silence_frames": int(len(values) - 1 - nonzero[-1]),
        "frames_lost": dropped + silence,
        "dropped_frames": dropped,
        "largest_drop_frames": largest,
        "silence_inside_frames": silence,
        "repeated_frames": repeated,
        "source_glitches": glitches,
        "source_glitch_frames": glitch_frames,
    }


def check_recording(paths: Sequence[Path]) -> dict:
    """Read `paths` in order as one recording: their formats, sizes and frames, and what the ramp says."""
    infos, firsts, lasts = [], [], []
    for path in paths:
        info, first, last = _read_edges(Path(path))
        infos.append(info)
        firsts.append(first)
        lasts.append(last)
    first = np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
    last = np.concatenate(lasts) if lasts else np.zeros(0, np.int64)
    report = {
        "files": infos,
        "frames": int(sum(i["frames"] for i in infos)),
        "bytes": int(sum(i["bytes"] for i in infos)),
        "ramp": ramp_report(first),
    }
    arrived = [np.flatnonzero(channel) for channel in (first, last)]
    if all(len(a) for a in arrived):
        # From the moment both channels' ramps arrived, each frame of the last must be channel 0's.
        both = max(a[0] for a in arrived)
        report["last_channel_mismatches"] = int((first[both:] != last[both:]).sum())
    else:
        report["last_channel_mismatches"] = None
    return report
