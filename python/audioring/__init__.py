"""audioring: real-time audio capture with a lock-free native ring buffer.

A drop-in, faster replacement for ``tflite_support.task.audio.AudioRecord``:
change the import, keep the code.

Public names
------------
AudioRecord
    Records from a PortAudio device (or a VirtualInput) into a native ring;
    reads the latest frames in O(1) without copying; streams losslessly.
VirtualInput
    The built-in virtual input device (sine, noise, frame-counter ramp).
Ring
    The lock-free single-producer frame ring itself, with zero-copy reads.
CaptureStats
    The capture callback's counters (``AudioRecord.stats``).
DeviceStats
    Each device's counts and clock drift (``AudioRecord.device_stats``).
FrameStream
    The iterator ``AudioRecord.stream()`` and ``Ring.stream()`` return.
FileWriter, Gap
    What ``record_to()`` returns: a recording written into audio files by a
    native thread, and the gaps it had to fill with silence.
AsyncFrameStream
    The async iterator ``AudioRecord.astream()`` and ``Ring.astream()`` return.
OverrunError
    A lossless consumer fell so far behind that frames were overwritten.
RecorderClosedError
    A method was called on a closed recorder.
attach, shared, SharedRecording, SharedInfo, ProducerLostError
    Reading a recording another process shares by name (``share=``).
__version__
    The package version.
"""

try:
    from . import _core
except ImportError as error:  # pragma: no cover - only on a broken install
    raise ImportError(
        "audioring's compiled module audioring._core could not be imported. "
        "Reinstall audioring (`pip install --force-reinstall audioring`); "
        "building from source needs a C++17 compiler."
    ) from error

from ._astream import AsyncFrameStream
from ._errors import OverrunError, ProducerLostError, RecorderClosedError
from ._file_writer import FileWriter, Gap
from ._record import AudioRecord
from ._ring import Ring
from ._shared import SharedInfo, SharedRecording, attach, shared
from ._stats import CaptureStats, DeviceStats
from ._stream import FrameStream
from ._virtual import VirtualInput

__version__: str = _core.__version__

__all__ = [
    "AsyncFrameStream",
    "AudioRecord",
    "CaptureStats",
    "DeviceStats",
    "FileWriter",
    "FrameStream",
    "Gap",
    "OverrunError",
    "ProducerLostError",
    "RecorderClosedError",
    "Ring",
    "SharedInfo",
    "SharedRecording",
    "VirtualInput",
    "__version__",
    "attach",
    "shared",
]
