"""The standard Python recipe for recording to a file, as sounddevice's own ``examples/rec_unlimited.py`` writes it.

An ``InputStream`` whose callback puts ``indata.copy()`` on a ``queue.Queue``;
the main thread, inside ``with soundfile.SoundFile(...)`` and ``with
sd.InputStream(...)``, writes every block it takes off the queue. Three
differences from the example, none in how the audio travels: it stops after
`frames` frames instead of at Ctrl-C; it counts the callback's status flags
instead of printing them; and once the stream is closed it writes what the
queue still holds (the example leaves that unwritten), so that no frame the
stream delivered is counted lost.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Optional


def record(path: str, device: int, channels: int, rate: int, frames: int, *, dtype: str = "int32",
           subtype: str = "PCM_32", file_format: str = "RF64",
           on_open: Optional[Callable[[], None]] = None) -> dict:
    """Record `frames` frames (at least: whole blocks) of `channels` from `device` into `path`; what it counted.

    `file_format` RF64: a 60 s recording at 256 ch x 192 kHz int32 is 11.8 GB, past WAV's 4 GiB, and the
    example's user would pick the format that holds it. `on_open` is called once the file exists.
    """
    import sounddevice as sd
    import soundfile as sf

    q: queue.Queue = queue.Queue()
    counted = {"callbacks_with_status": 0, "overflow_flags": 0, "callbacks": 0}

    def callback(indata, frame_count, time, status):  # the example's callback, counting instead of printing
        counted["callbacks"] += 1
        if status:
            counted["callbacks_with_status"] += 1
            if status.input_overflow:
                counted["overflow_flags"] += 1
        q.put(indata.copy())

    written = 0
    largest_queue = 0
    with sf.SoundFile(path, mode="x", samplerate=rate, channels=channels, subtype=subtype,
                      format=file_format) as file:
        if on_open is not None:
            on_open()
        with sd.InputStream(samplerate=rate, device=device, channels=channels, dtype=dtype, callback=callback):
            while written < frames:
                largest_queue = max(largest_queue, q.qsize())
                block = q.get()
                file.write(block)
                written += len(block)
        while True:  # what the closed stream left on the queue
            try:
                block = q.get_nowait()
            except queue.Empty:
                break
            file.write(block)
            written += len(block)
    return {**counted, "frames_written": written, "largest_queue_blocks": largest_queue}
