"""AudioRecord: drop-in replacement for tflite_support.task.audio.AudioRecord."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Callable, NoReturn, Optional, SupportsIndex, Union

import numpy as np

from . import _core, _watch
from ._aligned_pipeline import build_aligned_pipeline
from ._capture_report import CaptureReport
from ._device_report import DeviceReport
from ._errors import RecorderClosedError
from ._pipeline import build_pipeline
from ._process_hooks import forget_at_exit, release_at_exit
from ._reader import FrameReader
from ._settings import check_record_settings
from ._transitions import Transition, Transitions
from ._virtual import VirtualInput


class AudioRecord(_core.RecordReader, FrameReader, CaptureReport, DeviceReport):
    """Record audio into a lock-free native ring; read the latest frames in O(1).

    A drop-in replacement for ``tflite_support.task.audio.AudioRecord`` (and
    MediaPipe's copy of it): the same constructor, ``start_recording()``,
    ``stop()`` and ``read(size)``. Capture runs in a native PortAudio callback
    that never needs the GIL, so Python being busy loses no audio.

    Parameters
    ----------
    channels : int
        Number of input channels.
    sampling_rate : int
        Sampling rate in Hz.
    buffer_size : int
        Frames that :meth:`read` can return at most.
    device : int, str, VirtualInput or list, optional
        A PortAudio input device (index or name substring, as sounddevice
        takes them; default: the default input device), or a `VirtualInput`.
        A list records several devices into one sample-aligned recording:
        each element a device, or a ``(device, mapping)`` pair naming its
        inputs (1-based) in order; ``channels`` is the total (devices
        without a mapping share what the mappings leave, equally). Each
        device's clock is measured against the master's (``clock``) from
        its blocks' capture times, and its frames are resampled natively
        (libsoxr's variable-rate mode, no GIL) onto the master's timebase;
        the first frames are aligned by capture time. See `device_stats`
        and `clock_drift`.
    dtype : str, optional
        Sample format: ``float32`` (default), ``int32``, ``int16``, ``int8``, ``uint8``.
    blocksize : int, optional
        Frames per callback; 0 (default) lets PortAudio choose.
    latency : float or {'low', 'high'}, optional
        Suggested input latency in seconds, or PortAudio's low/high default
        (default ``'high'``, as sounddevice).
    headroom : int, optional
        Frames the ring holds beyond ``buffer_size``: how many frames may
        arrive before a zero-copy view of ``buffer_size`` frames is
        overwritten. Default: one second of audio.
    driver : {'native', 'python'}, optional
        ``'native'`` (default): PortAudio calls audioring's C callback
        directly; falls back to ``'python'`` if this sounddevice cannot take a
        C callback. ``'python'``: a Python callback on
        ``sounddevice.RawInputStream`` feeds the same ring (needs the GIL).
    device_rate : int, optional
        The rate to open the device at (default: ``sampling_rate`` if the
        device takes it, else its default rate). When it differs from
        ``sampling_rate``, a native libsoxr thread converts (`converting`).
    mapping : sequence of int, optional
        The device inputs (1-based, as sounddevice's ``rec(mapping=)``) to
        record, one per channel, in order (default: the first ``channels``).
    quality : {'quick', 'low', 'medium', 'high', 'very high'}, optional
        libsoxr's resampling recipe (default ``'high'``).
    share : str, optional
        Publish the recording under this name while the recorder is open:
        other processes of the same user read it with `audioring.attach`,
        zero-copy and read-only (`shared_name`). 1..64 characters of
        letters, digits, ``_``, ``-`` and ``.`` (not first). Linux only.
    clock : int, optional
        With a list of devices: the index of the master, whose clock is the
        recording's (default 0, the first).

    Raises
    ------
    FileExistsError
        If ``share`` names a recording that a live process shares (the
        message names it); a dead producer's name is taken over.
    NotImplementedError
        For ``share`` where sharing is not available (it needs Linux).
    ValueError
        For non-positive sizes (as the reference does), an unknown device
        (listing the available input devices), a channel count the device
        refuses (naming both), a ``device_rate`` it refuses (listing the
        rates it accepts), a ``mapping`` naming inputs it lacks, an
        unknown ``quality``, or a conversion wider than
        ``sampling_rate / device_rate`` from 1/1024 to 1024 (naming both).
    TypeError
        For arguments of the wrong type.
    ImportError, OSError
        If sounddevice or PortAudio is missing (saying what to install).

    MemoryError
        If the ring, a virtual input's block buffer and, when converting, the
        device's ring and the converter's buffers (libsoxr's included) do not
        fit together in the available memory (under a memory cgroup's limit
        too), naming the sizes; checked before anything is allocated.

    Notes
    -----
    Threading: the methods may be called from any Python thread; audio
    arrives on PortAudio's (or the virtual input's) thread without the GIL.

    Signals: waits (`stream`) run signal handlers within about 20 ms, so
    Ctrl-C raises `KeyboardInterrupt` whether data comes or not. Whatever
    interrupts `start_recording`, `stop` or `close` (an exception from a
    signal handler, a failure to start a thread), `recording` afterwards
    tells the truth and the next call works. A signal handler that calls
    one of them while the same thread is inside another (e.g. ``close()``
    from a SIGTERM handler during ``stop()``) does not deadlock: its call
    is carried out as soon as the interrupted one finishes.

    Processes: a recorder belongs to the process that made it. In a forked
    child (``os.fork``, multiprocessing's ``fork`` start method) it never
    writes into the parent's ring: `start_recording`, `stop`, `stream`,
    `read`, `is_intact` and `frame_of` raise `RuntimeError` (create the
    recorder in the child), and `close` (or garbage collection) there only
    marks the child's copy closed, releasing nothing of the parent's. A
    recorder cannot be pickled or copied (`TypeError`): create one in each
    worker process.

    Examples
    --------
    >>> from audioring import AudioRecord, VirtualInput
    >>> rec = AudioRecord(1, 16000, 16000, device=VirtualInput("sine", 440))
    >>> rec.start_recording()
    >>> latest = rec.read(1600)        # zero-copy, read-only, (1600, 1)
    >>> rec.close()
    """

    def __init__(
        self,
        channels: int,
        sampling_rate: int,
        buffer_size: int,
        *,
        device: Union[int, str, VirtualInput, list[Any], None] = None,
        dtype: str = "float32",
        blocksize: int = 0,
        latency: Union[float, str, None] = None,
        headroom: Optional[int] = None,
        driver: str = "native",
        device_rate: Optional[int] = None,
        mapping: Optional[Sequence[int]] = None,
        quality: str = "high",
        share: Optional[str] = None,
        clock: int = 0,
    ) -> None:
        self._closed = True  # until fully built, so __del__ and close() are safe
        settings = check_record_settings(
            channels, sampling_rate, buffer_size, device=device, dtype=dtype, blocksize=blocksize, latency=latency,
            headroom=headroom, driver=driver, device_rate=device_rate, mapping=mapping, quality=quality, share=share,
            clock=clock,
        )
        self._channels, self._sampling_rate = settings.channels, settings.sampling_rate
        self._buffer_size, self._dtype, self._quality = settings.buffer_size, settings.dtype, settings.quality
        self._transitions = Transitions()  # start/stop/close one at a time
        self._generation = _core.fork_generation()  # see _check_process()
        build = build_pipeline if settings.devices is None else build_aligned_pipeline
        self._pipeline = pipeline = build(settings)
        # What the lifecycle and the properties below use of it.
        self._plan, self._ring, self._source = pipeline.plan, pipeline.ring, pipeline.source
        self._capture, self._converter = pipeline.capture, pipeline.converter
        self._attach(self._ring._core, self._buffer_size)  # the native read() reads this ring
        self._closed = False
        devices = getattr(self._source, "devices", [self._source])  # several, when aligned
        if any(device.driver != "virtual" for device in devices):  # a PortAudio stream, converted or not
            release_at_exit(self)

    # ---- the reference's API --------------------------------------------------

    @property
    def channels(self) -> int:
        """Number of input channels."""
        return self._channels

    @property
    def sampling_rate(self) -> int:
        """Sampling rate in Hz."""
        return self._sampling_rate

    @property
    def buffer_size(self) -> int:
        """The most frames :meth:`read` returns."""
        return self._buffer_size

    def start_recording(self) -> None:
        """Start recording into a zeroed buffer (a no-op while already recording).

        Views read before are then judged not intact by :meth:`is_intact`.
        """
        self._transition(Transition.START)

    def stop(self) -> None:
        """Stop recording. The frames recorded so far stay readable."""
        self._transition(Transition.STOP)

    # ---- what the reference lacks ---------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        """The sample format."""
        return self._dtype

    @property
    def device(self) -> str:
        """The name of the input device (``'virtual:...'`` for a VirtualInput)."""
        return self._source.name

    @property
    def driver(self) -> str:
        """How audio arrives: ``'native'`` (C callback), ``'python'`` or ``'virtual'``."""
        return self._source.driver

    @property
    def latency(self) -> float:
        """The stream's input latency in seconds, as PortAudio reports it.

        On JACK, where PortAudio reports 0, one JACK period (the device's
        default low input latency); a virtual input reports one block.
        """
        return self._source.latency

    @property
    def device_rate(self) -> int:
        """The rate the device runs at, in Hz (``sampling_rate`` unless `converting`)."""
        return self._plan.rate

    @property
    def device_channels(self) -> int:
        """The inputs the device was opened with."""
        return self._plan.channels

    @property
    def mapping(self) -> list[int]:
        """The device input (1-based) of each recorded channel."""
        return [m + 1 for m in self._plan.mapping]

    @property
    def converting(self) -> bool:
        """Whether a converter thread turns the device's frames into the recording's.

        True when the device runs at another rate than ``sampling_rate``, or
        a `mapping` other than the first ``channels`` inputs was asked for.
        """
        return self._converter is not None

    @property
    def quality(self) -> str:
        """libsoxr's recipe for the conversion (see the constructor)."""
        return self._quality

    @property
    def shared_name(self) -> Optional[str]:
        """The name other processes `audioring.attach` to while the recorder is open (``share=``), else None."""
        return None if self._closed else self._ring.shared_name

    @property
    def headroom(self) -> int:
        """Frames the ring holds beyond ``buffer_size``."""
        return self._ring.capacity - self._buffer_size

    @property
    def recording(self) -> bool:
        """Whether the recorder is recording: asked of the stream itself, so it is true whatever interrupted."""
        return not self._closed and self._source.started

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def first_frame(self) -> int:
        """Absolute frame number of the current recording's first frame (a view's: :meth:`frame_of`).

        Frames before it are the zeros :meth:`start_recording` wrote (or an
        earlier recording's): `stream` never reaches back past it.
        """
        return self._ring._core.first_frame

    @property
    def frames_written(self) -> int:
        """Absolute frame number one past the newest frame in the ring."""
        return self._ring.frames_written

    def close(self) -> None:
        """Stop recording and release the device. Zero-copy arrays stay readable.

        Threads waiting in :meth:`stream` are woken with `RecorderClosedError`.
        Closing twice is harmless. In a forked child it only marks the child's
        copy closed: the device, thread and ring belong to the parent.
        """
        if "_source" not in self.__dict__:  # __init__ failed before the source opened: nothing to release
            self._closed = True
            return
        if self._generation != _core.fork_generation():
            # Neither the lock (another thread may have held it at the fork,
            # and no thread will ever release it here) nor the source.
            self._closed = True
            self._end_reads()
            return
        self._transition(Transition.CLOSE)

    def __enter__(self) -> AudioRecord:
        self.start_recording()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self, _finalizing: Callable[[], bool] = sys.is_finalizing) -> None:
        # The stream must be closed before the capture state it writes into
        # can be freed; close() guarantees the order.
        if getattr(self, "_closed", True):
            return
        try:
            self.close()
        except Exception:
            # At interpreter shutdown modules are half torn down: an error
            # then says nothing about the program (the exit hook closed
            # PortAudio's streams already), so it is not printed.
            if not _finalizing():
                raise

    def __copy__(self) -> NoReturn:
        raise TypeError(
            "an AudioRecord cannot be copied: the copy would share its stream, and closing either would "
            "close both; make another AudioRecord"
        )

    def __deepcopy__(self, memo: object) -> NoReturn:
        self.__copy__()

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            "an AudioRecord cannot be pickled: it is a live audio stream and memory of this process; "
            "create the AudioRecord in the worker process instead (send its arguments, or copies of "
            "its frames: rec.read(n, copy=True))"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(0)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "recording" if self.recording else "stopped"
        return (
            f"<AudioRecord channels={self._channels} sampling_rate={self._sampling_rate} "
            f"buffer_size={self._buffer_size} dtype={self._dtype.name} device={self.device!r} "
            f"driver={self.driver} {state}>"
        )

    # ---- internals --------------------------------------------------------------

    def _transition(self, transition: Transition) -> None:
        """Carry out ``transition``, after the checks its public method makes at once, even when it is deferred."""
        if transition is not Transition.CLOSE:
            self._check_process(transition.value)
            if self._transitions.inside:  # deferred (a signal handler): a closed recorder still says so now
                self._check_open()
        self._transitions(transition, self._run)

    def _run(self, transition: Transition) -> None:
        """One transition, with the transitions' lock held (`Transitions`)."""
        if transition is Transition.CLOSE:
            self._close_locked()
            return
        self._check_open()
        if transition is Transition.STOP:
            self._stop_locked()
        else:
            self._start_locked()

    def _release_at_exit(self) -> None:
        """At exit (`_process_hooks`): stop and release the device, unless another thread is in a transition.

        Not marked closed, so that a daemon thread still iterating a stream
        ends its loop quietly (the recording stopped) instead of dying with
        `RecorderClosedError`. A recorder that another thread is starting or
        stopping right now is left alone: its lock is not waited for.
        """
        if self._closed or self._generation != _core.fork_generation():
            return
        with self._transitions.unless_busy() as held:
            if not held:
                return
            try:
                self._stop_locked()  # waiting streams wake and end: no longer recording
            finally:
                self._source.close()  # idempotent: the recorder's own close() later does nothing more

    # Each step below leaves a true state if an exception stops it at any
    # point: `recording` asks the source, and the source's start and stop
    # are single native calls.

    def _start_locked(self) -> None:
        if self._source.started:
            return
        self._source.ensure_alive()
        # The stream is stopped, so this thread may act as the producer. The
        # clear begins a new recording (the ring's first_frame): streams of
        # the last one end, and never take these zeros for audio.
        self._ring.clear()
        self._capture.reset()
        self._source.start()
        if self._ring.shared_name is not None:
            self._ring._core.set_state(_core.SharedState.recording)

    def _stop_locked(self) -> None:
        try:
            if self._source.started:
                self._source.stop()  # returns once no callback runs any more
        finally:
            if self._ring.shared_name is not None:
                self._ring._core.set_state(_core.SharedState.stopped)  # readers' streams drain and end
            self._ring._core.interrupt()  # waiting streams drain and end
            self._finish_writers()  # file writers write everything recorded, then close

    def _close_locked(self) -> None:
        # Closed before the stop: the stop wakes waiting streams, and one that
        # then ran while the stream closes (which releases the GIL) would see a
        # stopped, open recorder and end quietly instead of raising
        # RecorderClosedError. (Seen on PulseAudio.) Not returning early when
        # already closed: a close that was interrupted finishes the job
        # (every step below is a no-op once done).
        self._closed = True
        self._end_reads()  # the native reads refuse from now on
        try:
            self._stop_locked()
        finally:
            try:
                self._source.close()
            finally:
                self._ring.close()  # unshares: the name is gone, attached readers' streams end
                self._ring._core.interrupt()
                forget_at_exit(self)

    # ---- FrameReader's hooks ------------------------------------------------------

    _closed_message = "the recorder is closed; create a new AudioRecord"

    @property
    def _reader_ring(self) -> _core.FrameRing:
        return self._ring._core

    def _check_readable(self, method: str) -> None:
        self._check_process(method)
        self._check_open()

    def _check_recording(self, method: str) -> None:
        if not self.recording:
            raise RuntimeError(f"{method}() needs a recording: call start_recording() first")

    def _producing(self) -> bool:
        """For `FrameStream`: whether frames may still arrive; raises if the recorder is closed."""
        self._check_process("stream")
        self._check_open()
        return self.recording

    def _end_reads(self) -> None:
        """The native reads refuse from now on, and the asyncio waits end (their watcher thread joined).

        close() calls this once the recorder is marked closed (so a woken
        consumer finds it closed and raises `RecorderClosedError`), in a
        forked child too, where the watcher is the parent's and nothing is joined.
        """
        super()._close(self._closed_message)
        ring = self.__dict__.get("_ring")
        if ring is not None:
            _watch.close(ring._core)

    def _check_open(self) -> None:
        if self._closed:
            raise RecorderClosedError(self._closed_message)

    def _check_process(self, method: str) -> None:
        """Raise RuntimeError in a forked child: the recorder, its device and its ring are the parent's."""
        if self._generation != _core.fork_generation():
            raise RuntimeError(
                f"AudioRecord.{method}() in a forked child process: this recorder belongs to "
                f"the parent process (pid {os.getppid()}), whose ring memory the child shares; the child must "
                "not record into it nor read it. Create the AudioRecord in the child process instead"
            )
