"""CaptureReport: what a recorder tells of its capture: the counters and the device clock.

`AudioRecord` keeps the lifecycle (start, stop, close, process ownership)
and the reads; what the capture callback counted (`stats` and the two
counts taken from it), when a frame reached the ADC (`time`, `time_at`) and
how much the resampler holds back (`conversion_delay`) are answered here,
from the stages `build_pipeline` made. An attached reader reports the same
from the shared header instead (`SharedRecording`).
"""

from __future__ import annotations

from typing import Optional, Union

from . import _core
from ._clock import frame_time
from ._sources import Source
from ._stats import CaptureStats
from ._transitions import Transitions


class CaptureReport:
    """`stats`, `frames_recorded`, `overflows`, `time`, `time_at` and `conversion_delay` of an `AudioRecord`.

    The recorder sets the attributes annotated below once its pipeline is
    built, and provides ``_check_process(method)`` (raise in a forked
    child) and ``_check_open()`` (raise once closed).
    """

    _sampling_rate: int
    _source: Source
    #: What a new recording resets: the device's capture, or the converter that speaks for it.
    _capture: Union[_core.Capture, _core.Converter, _core.Aligner]
    _converter: Optional[_core.Converter]
    _transitions: Transitions

    def _check_process(self, method: str) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    @property
    def stats(self) -> CaptureStats:
        """The capture callback's counters since the last :meth:`start_recording`."""
        return CaptureStats(**self._capture.stats())

    @property
    def frames_recorded(self) -> int:
        """Frames recorded at ``sampling_rate`` since the last :meth:`start_recording` (see `stats`)."""
        return self.stats.frames

    @property
    def overflows(self) -> int:
        """Blocks PortAudio flagged as following lost input since :meth:`start_recording`."""
        return self.stats.input_overflows

    @property
    def conversion_delay(self) -> float:
        """Output frames the resampler holds back now: its latency, 0 without resampling.

        Timestamps are not affected (`time_at` names when a frame reached the
        ADC); this is how much later than without conversion a frame arrives.
        """
        return 0.0 if self._converter is None else float(self._converter.delay)

    @property
    def time(self) -> float:
        """The stream's clock now, in seconds: the clock :meth:`time_at` uses.

        Waits for a :meth:`start_recording`, :meth:`stop` or :meth:`close` that
        another thread is inside: PortAudio cannot tell a stream's time while
        the stream starts, stops or closes (on PulseAudio it then fails).
        """
        self._check_process("time")
        # Inside this thread's own start/stop/close (a signal handler), waiting would deadlock: between() does not.
        with self._transitions.between():
            self._check_open()
            return float(self._source.time)

    def time_at(self, frame: int) -> float:
        """The stream time (seconds, the device's clock) at which absolute ``frame`` was captured.

        Frames are timestamped from the first block's ADC time at the nominal rate.

        Raises
        ------
        RuntimeError
            If nothing has been captured since :meth:`start_recording`.
        """
        return frame_time(self._capture.anchor(), frame, self._sampling_rate)
