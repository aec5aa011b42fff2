#!/usr/bin/env python3
"""Voice activity detection: print when someone speaks.

webrtcvad (``pip install webrtcvad-wheels``) takes 30 ms frames of 16 kHz
int16 mono. audioring records exactly that from any input device, streaming
every frame once, in order; on a device that runs at 48 kHz (most do) it
converts natively. Each speech segment is printed with the device-clock
times of its first and last frame (``AudioRecord.time_at``)::

    python examples/vad.py                                  # default device, until Ctrl-C
    python examples/vad.py --device pulse --seconds 10
    speech 1796074861.930 1796074863.470 (1.54 s)
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import webrtcvad

from _device import DEVICE_HELP, device
from audioring import AudioRecord

RATE = 16000
FRAME = 480  # 30 ms: webrtcvad takes frames of 10, 20 or 30 ms
END_AFTER = 10  # a segment ends after 300 ms without speech...
MIN_SPEECH = 3  # ...and is reported if it held at least 90 ms of speech


def speech_segments(rec: AudioRecord, vad: webrtcvad.Vad, seconds: float | None) -> Iterator[tuple[int, int]]:
    """Yield ``(first, end)`` frame numbers of each speech segment (``end``: one past its last speech frame)."""
    start = end = None
    speech = quiet = 0
    for frame in rec.stream(FRAME, timeout=2.0):  # every 30 ms frame once, in order
        first = rec.frame_of(frame)
        if vad.is_speech(frame.tobytes(), RATE):
            start = first if start is None else start
            end, speech, quiet = first + FRAME, speech + 1, 0
        elif start is not None:
            quiet += 1
            if quiet == END_AFTER:
                if speech >= MIN_SPEECH:
                    yield start, end
                start, speech = None, 0
        if seconds is not None and first + FRAME - rec.first_frame >= seconds * RATE:
            break
    if start is not None and speech >= MIN_SPEECH:
        yield start, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=device, help=DEVICE_HELP)
    parser.add_argument("--device-rate", type=int, help="open the device at this rate (audioring converts)")
    parser.add_argument("--seconds", type=float, help="stop after this much audio (default: Ctrl-C)")
    parser.add_argument("--aggressiveness", type=int, default=3, choices=range(4), help="webrtcvad's mode")
    args = parser.parse_args()

    vad = webrtcvad.Vad(args.aggressiveness)
    with AudioRecord(1, RATE, RATE, dtype="int16", device=args.device, device_rate=args.device_rate) as rec:
        print(f"listening to {rec.device} at {rec.device_rate} Hz", flush=True)
        try:
            for first, end in speech_segments(rec, vad, args.seconds):
                start_s, end_s = rec.time_at(first), rec.time_at(end)
                print(f"speech {start_s:.3f} {end_s:.3f} ({end_s - start_s:.2f} s)", flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
