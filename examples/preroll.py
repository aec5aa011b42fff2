#!/usr/bin/env python3
"""Keep listening; when a sound starts, save the 2 s before it and the 3 s after it to a WAV file.

A sound starts (an onset) when the level, the peak of each 20 ms window
(every channel), reaches ``--threshold`` after at least ``--hold`` seconds
below half of it: the hysteresis and the hold keep a steady tone, a
sine's zero crossings or a note's decay from counting as new onsets. A
sound already going on when listening starts is no onset. The onset is
the first sample of that window that reaches the threshold, to the frame.

The 2 s before it need no copying while listening: the recorder's ring
still holds them, so ``rec.record_to(path, start=onset - 2 s, frames=5 s)``
writes them first and then the live audio for 3 s more, losslessly, on a
native thread (32-bit float WAV, as recorded). A take never reaches back
past the recording's first frame (``rec.first_frame``): an onset in the
first 2 s gives a take that starts there, shorter than 5 s. An onset
while a take is being written is part of that take::

    python examples/preroll.py --threshold 0.1            # take-1.wav, take-2.wav, ... until Ctrl-C
    python examples/preroll.py --device system --seconds 60 --out /tmp/take
"""

from __future__ import annotations

import argparse

import numpy as np

from _device import DEVICE_HELP, device
from audioring import AudioRecord, FileWriter

BEFORE, AFTER = 2.0, 3.0  # seconds kept before and after an onset
WINDOW = 0.020  # seconds per level window: at least half a period of anything above 25 Hz, so a tone's peak is in it
RELEASE = 0.5  # the level counts as quiet below RELEASE * threshold


class OnsetDetector:
    """Finds onsets in consecutive blocks (level windows) of one recording.

    Invariant: ``quiet`` counts the frames since the level was last at or
    above the release level; an onset needs ``quiet >= hold`` and a level at
    or above the threshold. It starts at -1: "not known to be quiet", so a
    sound that is going on in the first window is no onset; a first window
    below the release level sets it to ``hold`` (the silence before listening
    started is taken as silence).
    """

    def __init__(self, threshold: float, hold: int) -> None:
        self.threshold, self.release = threshold, RELEASE * threshold
        self.hold = max(hold, 1)  # at least one quiet window between onsets, even with --hold 0
        self.quiet = -1

    def feed(self, block: np.ndarray, first: int) -> int | None:
        """The frame number of the onset in ``block`` (whose first frame is ``first``), or None."""
        peaks = np.abs(block).max(axis=1)
        level = float(peaks.max())
        armed = self.quiet >= self.hold
        if level < self.release:
            self.quiet = self.hold if self.quiet < 0 else self.quiet + len(block)
            return None
        self.quiet = 0  # between the release level and the threshold: not quiet, not an onset
        if armed and level >= self.threshold:
            return first + int(np.argmax(peaks >= self.threshold))
        return None


def report(onset_time: float, take: FileWriter, path: str) -> None:
    """Close the take (the file is complete then) and say what it holds."""
    take.close()
    lost = f" ({take.frames_lost} frames lost, written as silence)" if take.frames_lost else ""
    print(f"onset at {onset_time:.3f}: {take.frames} frames from frame {take.start}: wrote {path}{lost}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=device, help=DEVICE_HELP)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=0.1, help="onset level, 0..1 of full scale (default 0.1)")
    parser.add_argument("--hold", type=float, default=0.5,
                        help="seconds below half the threshold before the next onset (default 0.5)")
    parser.add_argument("--seconds", type=float, help="stop listening after this long (default: Ctrl-C)")
    parser.add_argument("--out", default="take", help="file name prefix: OUT-1.wav, OUT-2.wav, ...")
    args = parser.parse_args()
    if not 0 < args.threshold <= 1:
        parser.error(f"argument --threshold: must be in (0, 1], got {args.threshold}")
    if not args.hold >= 0:
        parser.error(f"argument --hold: must be >= 0 seconds, got {args.hold}")

    before, after = round(BEFORE * args.rate), round(AFTER * args.rate)
    detector = OnsetDetector(args.threshold, round(args.hold * args.rate))
    # The ring keeps `before` frames plus a second of headroom (the default): room for the listener's lag.
    with AudioRecord(args.channels, args.rate, before, device=args.device) as rec:
        print(f"listening to {rec.device}", flush=True)
        end = None if args.seconds is None else rec.first_frame + round(args.seconds * args.rate)
        takes = 0
        take: tuple[float, FileWriter, str] | None = None  # the take being written: onset time, writer, path
        try:
            for block in rec.stream(round(WINDOW * args.rate), timeout=2.0):  # every frame once, in order
                first = rec.frame_of(block)
                if end is not None and first >= end:
                    break
                onset = detector.feed(block, first)
                if take is not None and take[1].ended:
                    report(*take)
                    take = None
                if onset is not None and take is None:
                    takes += 1
                    start = max(onset - before, rec.first_frame)  # nothing before the recording's first frame
                    path = f"{args.out}-{takes}.wav"
                    take = (rec.time_at(onset), rec.record_to(path, start=start, frames=onset + after - start), path)
            if take is not None:  # stopped listening: the take still gets its 3 s
                take[1].wait()
        except KeyboardInterrupt:
            pass  # a take being written ends with what is recorded now
        if take is not None:
            report(*take)


if __name__ == "__main__":
    main()
