"""PortAudio input streams as a source, with every host-API workaround they need.

PortAudio calls audioring's C callback directly (``driver='native'``, no GIL)
or, as a fallback, a Python callback on ``sounddevice.RawInputStream`` hands
each block to the same native path.

Lost devices: audioring's callbacks never end a stream (they always return
paContinue), so a started stream that is neither stopped nor active was ended
by its host API: the device or sound server went away. Seen on Linux: a
killed PulseAudio ends the ALSA stream's thread; a JACK server that quits or
dies makes PortAudio's shutdown handler mark every stream inactive. Such a
stream never records again, so `PortAudioSource.ensure_alive` then refuses
(ALSA: ``Pa_StartStream`` would deadlock with PulseAudio gone; JACK: it
"succeeds" and nothing ever arrives).

JACK: PortAudio's JACK host API (pa_jack.c, 19.6 and 19.7) stops a stream by
waiting for the server's next process callback (RealStop: WaitCondition, up
to 10 minutes); once the server is gone that callback never comes, so
``Pa_StopStream`` and ``Pa_AbortStream`` hang. ``Pa_CloseStream`` and
``Pa_Terminate`` abort a running stream first (the same wait), and
``Pa_Terminate`` then fails its assertion ``jack_deactivate(...) == 0`` and
aborts the process. So a lost JACK stream is *abandoned*: never stopped or
closed, kept open for the life of the process (a few KB, with the capture its
callback would write into), and sounddevice's exit handler, whose only job is
to call ``Pa_Terminate``, is unregistered: the operating system releases
everything at exit, and the process exits normally instead of aborting. An
exit hook checks open JACK sources for a lost server before that handler runs.

Forked children: PortAudio's state (its streams, its server connections, the
threads behind them) belongs to the parent. sounddevice's exit handler would
call ``Pa_Terminate`` in a child that exits normally, acting on the parent's
streams from a process without their threads: seen aborting the child on
PulseAudio (``pa_memblock_unref`` assertion) and hanging it on JACK. So
in every forked child of a process where audioring loaded sounddevice, that
handler is unregistered (the fork hook lives with the other process hooks,
`_process_hooks.forget_portaudio_in_forked_children`, registered when the
first stream opens); sources inherited by the child are never stopped or
closed there (`AudioRecord` refuses to use them).

Latency: PortAudio's JACK host API reports an input latency of 0 (it reads
the JACK ports' registered latency, which servers such as jackd's dummy
driver leave at 0). A JACK client cannot see a block sooner than one period
after it began, so `PortAudioSource.latency` reports the device's default low
input latency, which PortAudio sets to one JACK period, when the stream says 0.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from types import ModuleType
from typing import Any, Callable, Optional, Union

from .. import _core, _devices
from .._process_hooks import before_portaudio_exits, forget_portaudio_in_forked_children

#: PortAudio error codes that mean "this device does not take this value".
PA_INVALID_CHANNEL_COUNT = -9998
PA_INVALID_SAMPLE_RATE = -9997

#: PortAudio's name of its JACK host API.
JACK_HOSTAPI = "JACK Audio Connection Kit"

#: Streams given up by `PortAudioSource`, with the capture their callback
#: writes into: kept alive, never closed, for the life of the process.
_ABANDONED: list[tuple[Any, _core.Capture]] = []

#: Open sources on JACK, checked at exit (see _abandon_lost_jack_streams).
_JACK_SOURCES: weakref.WeakSet[PortAudioSource] = weakref.WeakSet()


class PortAudioSource:
    """A PortAudio input stream whose callback writes into a capture."""

    def __init__(
        self,
        sd: ModuleType,
        stream: Any,
        capture: _core.Capture,
        name: str,
        hostapi: str,
        driver: str,
        default_latency: float = 0.0,
    ):
        self._sd = sd
        self._stream = stream
        self._capture = capture  # what the callback writes into: must outlive the stream
        self.name = name
        self.hostapi = hostapi
        self.driver = driver
        self.latency = float(stream.latency)
        if self.latency == 0.0 and hostapi == JACK_HOSTAPI:
            self.latency = float(default_latency)  # see the module's notes
        self._started = False
        self._lost = False  # the host API ended the stream while it ran
        self._abandoned = False  # and it was a JACK stream, given up without calling PortAudio again
        self._closed = False
        # Held while asking PortAudio about the stream and while closing it:
        # Pa_CloseStream frees the stream, so a query racing it would read
        # freed memory. Re-entrant for a signal handler that asks mid-close.
        self._handle = threading.RLock()
        if hostapi == JACK_HOSTAPI:
            _watch_jack_source(self)

    @classmethod
    def open(cls, sd: ModuleType, device: dict[str, Any], capture: _core.Capture, *, channels: int,
             sampling_rate: int, dtype: str, blocksize: int, latency: Union[float, str, None],
             native: bool) -> PortAudioSource:
        """Open (not start) a stream on ``device`` (as `_devices.resolve_input_device` found it).

        Called after `check_settings` passed for these settings.

        ``native`` asks for the C callback; a sounddevice that cannot take one
        gets the Python callback instead.

        Raises
        ------
        sounddevice.PortAudioError
            For PortAudio failures, with the device named.
        """
        forget_portaudio_in_forked_children(sd)
        native = native and _devices.has_native_callback_support(sd)
        stream = _open_stream(sd, capture, device, channels, sampling_rate, dtype, blocksize, latency, native)
        return cls(
            sd, stream, capture, device["name"], _devices.hostapi_name(sd, device), "native" if native else "python",
            float(device.get("default_low_input_latency", 0.0)),
        )

    @property
    def time(self) -> float:
        """PortAudio's stream time (``Pa_GetStreamTime``), in seconds."""
        with self._handle:
            if self._closed:
                raise RuntimeError("the stream is closed")
            return float(self._stream.time)

    @property
    def started(self) -> bool:
        """Whether PortAudio says the stream is started (not stopped), unless it was closed or abandoned."""
        with self._handle:
            if self._closed or self._abandoned:
                return False
            try:
                return not self._stream.stopped
            except Exception:  # noqa: BLE001 - PortAudio cannot tell: trust the last start()/stop()
                return self._started

    def ensure_alive(self) -> None:
        """Raise ``sounddevice.PortAudioError`` if the host API ended the stream."""
        if self._lost:
            raise self._sd.PortAudioError(
                f"device {self.name!r} stopped delivering audio while recording (did its sound "
                "server or device go away?); create a new AudioRecord"
            )

    def start(self) -> None:
        """Start the stream."""
        self._started = True  # first: _notice_lost asks PortAudio anyway, so early is harmless, late is not
        try:
            self._stream.start()
        except BaseException:
            self._started = False
            raise

    def stop(self) -> None:
        """Stop the stream; a lost JACK stream is abandoned instead (see the module's notes)."""
        self._notice_lost()
        if not self._abandoned:
            self._stream.stop()  # returns once no callback runs any more
        self._started = False

    def close(self) -> None:
        """Close the stream, unless it was abandoned; once (closing twice would free it twice)."""
        with self._handle:
            if self._closed:
                return
            self._closed = True  # first: whatever interrupts the close, it is never retried
            if not self._abandoned:
                self._stream.close()

    def _notice_lost(self) -> None:
        if self._started and not self._lost and _stopped_by_host(self._stream):
            self._lost = True
            if self.hostapi == JACK_HOSTAPI:
                _abandon(self._sd, self._stream, self._capture)
                self._abandoned = True


def check_settings(sd: ModuleType, device: dict[str, Any], channels: int, sampling_rate: int, dtype: str) -> None:
    """Raise ValueError naming the value if the device refuses these settings (before any allocation)."""
    name = device["name"]
    try:
        sd.check_input_settings(device=device["index"], channels=channels, dtype=dtype, samplerate=sampling_rate)
    except sd.PortAudioError as error:
        code = error.args[1] if len(error.args) > 1 else None
        if code == PA_INVALID_CHANNEL_COUNT:
            raise ValueError(
                f"device {name!r} does not accept channels={channels} "
                f"(it has {device['max_input_channels']} input channels)"
            ) from error
        if code == PA_INVALID_SAMPLE_RATE:
            raise ValueError(
                f"device {name!r} does not accept sampling_rate={sampling_rate} "
                f"(its default is {device['default_samplerate']:g})"
            ) from error
        raise sd.PortAudioError(f"device {name!r}: {error}", *error.args[1:]) from error


def _open_stream(
    sd: ModuleType,
    capture: _core.Capture,
    device: dict[str, Any],
    channels: int,
    sampling_rate: int,
    dtype: str,
    blocksize: int,
    latency: Union[float, str, None],
    native: bool,
) -> Any:
    name = device["name"]
    settings = dict(
        samplerate=sampling_rate,
        blocksize=blocksize,
        device=device["index"],
        channels=channels,
        dtype=dtype,
        latency=latency,
    )
    try:
        if native:
            # sounddevice documents that _StreamBase takes a C function pointer
            # as callback when wrap_callback is None (python-rtmixer relies on it).
            return sd._StreamBase(
                kind="input",
                callback=sd._ffi.cast("PaStreamCallback *", _core.capture_callback_address()),
                userdata=sd._ffi.cast("void *", capture.address),
                wrap_callback=None,
                **settings,
            )
        return sd.RawInputStream(callback=_python_callback(capture), **settings)
    except sd.PortAudioError as error:
        raise sd.PortAudioError(f"device {name!r}: {error}", *error.args[1:]) from error


def _stopped_by_host(stream: Any) -> bool:
    """Whether a started stream has stopped calling back on its own (see the module's notes)."""
    try:
        return not stream.stopped and not stream.active
    except Exception:  # noqa: BLE001 - PortAudio cannot even tell: the stream is unusable either way
        return True


def _abandon(sd: ModuleType, stream: Any, capture: _core.Capture) -> None:
    _ABANDONED.append((stream, capture))
    handler: Optional[Callable[[], None]] = getattr(sd, "_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)


def _watch_jack_source(source: PortAudioSource) -> None:
    _JACK_SOURCES.add(source)
    before_portaudio_exits(_abandon_lost_jack_streams)


def _abandon_lost_jack_streams() -> None:
    """At exit: give up the open JACK streams whose server went away, before Pa_Terminate runs."""
    for source in list(_JACK_SOURCES):
        if not source._closed:
            source._notice_lost()


def _python_callback(capture: _core.Capture) -> Callable[..., None]:
    # A weak reference: sounddevice's stream and its callback form a reference
    # cycle, so a strong one would keep the ring's memory (through the
    # Capture) alive after the recorder is gone, until the cyclic garbage
    # collector happens to run. The source holds the Capture, and the stream
    # is closed (so no callback runs) before it lets go of it.
    capture_ref = weakref.ref(capture)
    underflow, overflow = _core.INPUT_UNDERFLOW, _core.INPUT_OVERFLOW

    def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
        target = capture_ref()
        if target is None:  # pragma: no cover - the stream is closed before the Capture goes
            return
        flags = (underflow if status.input_underflow else 0) | (overflow if status.input_overflow else 0)
        target.write_block(indata, frames, time.inputBufferAdcTime, time.currentTime, flags)

    return callback
