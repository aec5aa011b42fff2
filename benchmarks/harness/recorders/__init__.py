"""audioring and its anchors behind one interface (``base.Recorder``), one module per recorder.

Every anchor is its own code as installed from PyPI, used through its public
API (plus, where a case needs it, an attribute the anchor set itself, such as
the stream a reference ``AudioRecord`` opened); nothing re-implements one.
"""

from __future__ import annotations

from typing import Optional

from harness.recorders.audioring_recorder import AudioringRecorder
from harness.recorders.base import InstalledCallback, Recorder
from harness.recorders.rtmixer_recorder import RtmixerRecorder
from harness.recorders.sd_queue_recorder import SdQueueRecorder
from harness.recorders.tflite_recorder import TfliteRecorder

#: The order of every table's rows.
RECORDERS = {cls.name: cls for cls in (AudioringRecorder, TfliteRecorder, SdQueueRecorder, RtmixerRecorder)}
LABELS = {name: cls.label for name, cls in RECORDERS.items()}


def open_recorder(name: str, device: int, channels: int, rate: int, buffer_frames: int, *,
                  blocksize: Optional[int] = None, keep: bool = False) -> Recorder:
    """Open recorder `name` on PortAudio device `device` (not started)."""
    return RECORDERS[name](device, channels, rate, buffer_frames, blocksize=blocksize, keep=keep)


__all__ = ["InstalledCallback", "LABELS", "RECORDERS", "Recorder", "open_recorder"]
