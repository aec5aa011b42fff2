#!/usr/bin/env python3
"""Keep listening; when a sound starts, save the 2 s before it and the 3 s after it to a WAV file.

A sound starts (an onset) where a sample reaches ``--threshold`` after one
that did not. The 2 s before it need no copying while listening: the
recorder's ring still holds them, so a new lossless stream that starts 2 s
before the onset (``rec.stream(start=...)``) reads them first and then
follows the live audio for 3 s more. Every take is exactly 5 s of frames,
written as recorded (32-bit float WAV)::

    python examples/preroll.py --threshold 0.1            # take-1.wav, take-2.wav, ... until Ctrl-C
    python examples/preroll.py --device system --seconds 60 --out /tmp/take
"""

from __future__ import annotations

import argparse

import numpy as np
import soundfile

from audioring import AudioRecord, VirtualInput

BEFORE, AFTER = 2.0, 3.0  # seconds kept before and after an onset


def device(name: str) -> int | str | VirtualInput:
    """``--device``: a PortAudio device index or name, or ``virtual[:signal]`` (audioring's test input)."""
    if name.startswith("virtual"):
        return VirtualInput(*name.split(":")[1:2])
    return int(name) if name.isdigit() else name


def next_onset(rec: AudioRecord, start: int, end: int | None, threshold: float) -> int | None:
    """The frame number of the first onset at or after frame ``start`` (None: none before frame ``end``)."""
    was_loud = True  # a sound already going on when listening starts is not an onset
    for block in rec.stream(rec.sampling_rate // 100, start=start, timeout=2.0):  # 10 ms blocks
        first = rec.frame_of(block)
        if end is not None and first >= end:
            return None
        loud = np.abs(block).max(axis=1) >= threshold
        onsets = np.flatnonzero(loud & ~np.concatenate(([was_loud], loud[:-1])))
        if onsets.size:
            return first + int(onsets[0])
        was_loud = bool(loud[-1])
    return None  # the recorder stopped


def save(rec: AudioRecord, first: int, frames: int, path: str) -> None:
    """Write frames ``[first, first + frames)`` to ``path``: the past ones from the ring, then as they arrive."""
    with soundfile.SoundFile(path, "w", rec.sampling_rate, rec.channels, "FLOAT") as wav:
        left = frames
        for block in rec.stream(rec.sampling_rate // 10, start=first, timeout=2.0):
            wav.write(block[:left])
            left -= len(block[:left])
            if left == 0:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=device, help="input device (default: the system's)")
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=0.1, help="onset level, 0..1 of full scale")
    parser.add_argument("--seconds", type=float, help="stop listening after this long (default: Ctrl-C)")
    parser.add_argument("--out", default="take", help="file name prefix: OUT-1.wav, OUT-2.wav, ...")
    args = parser.parse_args()

    before, after = round(BEFORE * args.rate), round(AFTER * args.rate)
    # The ring keeps `before` frames plus a second of headroom (the default): room for the listener's lag.
    with AudioRecord(args.channels, args.rate, before, device=args.device) as rec:
        print(f"listening to {rec.device}", flush=True)
        end = None if args.seconds is None else rec.first_frame + round(args.seconds * args.rate)
        position, takes = rec.first_frame, 0
        try:
            while (onset := next_onset(rec, position, end, args.threshold)) is not None:
                takes += 1
                path = f"{args.out}-{takes}.wav"
                save(rec, onset - before, before + after, path)
                print(f"onset at {rec.time_at(onset):.3f}: wrote {path}", flush=True)
                position = onset + after  # listen again after the take
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
