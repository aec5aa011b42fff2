"""audioring and its anchors behind one interface (``base.Recorder``), one module per recorder.

Every anchor is its own code as installed from PyPI, used through its public
API (plus, where a case needs it, an attribute the anchor set itself, such as
the stream a reference ``AudioRecord`` opened); nothing re-implements one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Optional

from harness.recorders.audioring_recorder import AudioringRecorder
from harness.recorders.base import InstalledCallback, Recorder
from harness.recorders.rtmixer_recorder import RtmixerRecorder
from harness.recorders.sd_queue_recorder import SdQueueRecorder
from harness.recorders.sd_scipy_recorder import SdScipyRecorder
from harness.recorders.sd_soxr_recorder import SdSoxrRecorder
from harness.recorders.tflite_recorder import TfliteRecorder

#: The order of every table's rows.
RECORDERS = {cls.name: cls for cls in (AudioringRecorder, TfliteRecorder, SdQueueRecorder, RtmixerRecorder)}
#: The usual recipes for a rate the device does not deliver (audioring converts natively): the conversion case's
#: anchors, recording at `rate` from a device at its own rate. Not in RECORDERS: the other cases do not run them.
RESAMPLERS = {cls.name: cls for cls in (SdSoxrRecorder, SdScipyRecorder)}
LABELS = {name: cls.label for name, cls in {**RECORDERS, **RESAMPLERS}.items()}


#: The modules each anchor needs; audioring, the package under test, is always there.
_NEEDS = {"tflite": ("tflite_support",), "sd_queue": ("sounddevice",), "rtmixer": ("rtmixer",),
          "sd_soxr": ("sounddevice", "soxr"), "sd_scipy": ("sounddevice", "scipy")}


def missing(name: str) -> Optional[str]:
    """Why recorder `name` cannot run here (a package it needs is not installed), or None."""
    absent = [module for module in _NEEDS.get(name, ()) if importlib.util.find_spec(module) is None]
    if absent:
        return f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed (pip install '.[bench]')"
    return None


def installed(names: Iterable[str] = tuple(RECORDERS)) -> tuple:
    """The recorders of `names` whose packages are installed, in the same order."""
    return tuple(name for name in names if missing(name) is None)


def open_recorder(name: str, device: int, channels: int, rate: int, buffer_frames: int, *,
                  blocksize: Optional[int] = None, keep: bool = False) -> Recorder:
    """Open recorder `name` (of RECORDERS or RESAMPLERS) on PortAudio device `device` (not started)."""
    cls = RECORDERS[name] if name in RECORDERS else RESAMPLERS[name]
    return cls(device, channels, rate, buffer_frames, blocksize=blocksize, keep=keep)


__all__ = ["InstalledCallback", "LABELS", "RECORDERS", "RESAMPLERS", "Recorder", "installed", "missing",
           "open_recorder"]
