"""PortAudio access through sounddevice: loading it, finding input devices, opening streams."""

from __future__ import annotations

import atexit
import weakref
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple, Union, cast

from . import _core

# PortAudio error codes that mean "this device does not take this value".
_PA_INVALID_CHANNEL_COUNT = -9998
_PA_INVALID_SAMPLE_RATE = -9997

#: PortAudio's name of its JACK host API.
JACK_HOSTAPI = "JACK Audio Connection Kit"

#: Streams given up by abandon_stream(), with what their callback writes into:
#: kept alive, never closed, for the life of the process.
_ABANDONED: List[Tuple[Any, Any]] = []

_INSTALL_PORTAUDIO = (
    "Install PortAudio: Debian/Ubuntu/Raspberry Pi OS `sudo apt install libportaudio2`, "
    "Fedora `sudo dnf install portaudio`, macOS `brew install portaudio` "
    "(the Windows and macOS sounddevice wheels bundle it)."
)


def import_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into an error that says what to install.

    Raises
    ------
    OSError
        If the PortAudio library cannot be loaded.
    ImportError
        If sounddevice is not installed.
    """
    try:
        import sounddevice
    except OSError as error:
        raise OSError(f"PortAudio could not be loaded ({error}). {_INSTALL_PORTAUDIO}") from error
    except ImportError as error:
        raise ImportError(f"sounddevice is needed for audio devices: `pip install sounddevice` ({error})") from error
    return cast(ModuleType, sounddevice)


def input_devices(sd: ModuleType) -> List[Dict[str, Any]]:
    """Every device with input channels, as sounddevice describes them (with ``hostapi_name``)."""
    hostapis = sd.query_hostapis()
    devices = []
    for device in sd.query_devices():
        if device["max_input_channels"] > 0:
            devices.append(dict(device, hostapi_name=hostapis[device["hostapi"]]["name"]))
    return devices


def describe_input_devices(sd: ModuleType) -> str:
    """One line per input device, for error messages."""
    devices = input_devices(sd)
    if not devices:
        return "none (no input device found: is a sound server such as PulseAudio or JACK running?)"
    return "; ".join(
        f"{d['index']}: {d['name']!r} ({d['hostapi_name']}, {d['max_input_channels']} ch)" for d in devices
    )


def resolve_input_device(sd: ModuleType, device: Union[int, str, None]) -> Dict[str, Any]:
    """The sounddevice description of the input device ``device`` (None: the default input).

    Raises
    ------
    ValueError
        If no input device matches, naming the available ones.
    """
    try:
        info: Dict[str, Any] = sd.query_devices(device, "input")
        return info
    # OverflowError: an index beyond C int (cffi), e.g. 2**70; it is just another unknown device.
    except (ValueError, OverflowError, sd.PortAudioError) as error:
        wanted = "no default input device" if device is None else f"device {device!r}: {error}"
        raise ValueError(f"{wanted}. Available input devices: {describe_input_devices(sd)}") from None


def open_input_stream(
    sd: ModuleType,
    capture: _core.Capture,
    device: Dict[str, Any],
    channels: int,
    sampling_rate: int,
    dtype: str,
    blocksize: int,
    latency: Union[float, str, None],
    native: bool,
) -> Any:
    """Open (not start) a PortAudio input stream whose callback writes into ``capture``.

    With ``native``, PortAudio calls audioring's C callback directly (no GIL);
    otherwise a Python callback hands each block to the same native path.

    Raises
    ------
    ValueError
        If the device refuses the channel count or sampling rate (naming both).
    sounddevice.PortAudioError
        For other PortAudio failures, with the device named.
    """
    name = device["name"]
    try:
        sd.check_input_settings(device=device["index"], channels=channels, dtype=dtype, samplerate=sampling_rate)
    except sd.PortAudioError as error:
        code = error.args[1] if len(error.args) > 1 else None
        if code == _PA_INVALID_CHANNEL_COUNT:
            raise ValueError(
                f"device {name!r} does not accept channels={channels} "
                f"(it has {device['max_input_channels']} input channels)"
            ) from error
        if code == _PA_INVALID_SAMPLE_RATE:
            raise ValueError(
                f"device {name!r} does not accept sampling_rate={sampling_rate} "
                f"(its default is {device['default_samplerate']:g})"
            ) from error
        raise sd.PortAudioError(f"device {name!r}: {error}", *error.args[1:]) from error
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


def hostapi_name(sd: ModuleType, device: Dict[str, Any]) -> str:
    """The name of the host API of a device that :func:`resolve_input_device` returned."""
    return str(sd.query_hostapis(device["hostapi"])["name"])


def stopped_by_host(stream: Any) -> bool:
    """Whether a started PortAudio stream has stopped calling back on its own.

    audioring's callbacks never end a stream (they always return paContinue),
    so a stream that is neither stopped nor active was ended by its host API:
    the device or sound server went away. Seen on Linux: a killed PulseAudio
    ends the ALSA stream's thread; a JACK server that quits or dies makes
    PortAudio's shutdown handler mark every stream inactive.
    """
    try:
        return not stream.stopped and not stream.active
    except Exception:  # noqa: BLE001 - PortAudio cannot even tell: the stream is unusable either way
        return True


def abandon_stream(sd: ModuleType, stream: Any, capture: _core.Capture) -> None:
    """Give up a JACK stream whose server went away without calling PortAudio again.

    PortAudio's JACK host API (pa_jack.c, 19.6 and 19.7) stops a stream by
    waiting for the server's next process callback (RealStop:
    WaitCondition, up to 10 minutes); once the server is gone that callback
    never comes, so ``Pa_StopStream`` and ``Pa_AbortStream`` hang.
    ``Pa_CloseStream`` and ``Pa_Terminate`` abort a running stream first (the
    same wait), and ``Pa_Terminate`` then fails its assertion
    ``jack_deactivate(...) == 0`` and aborts the process (with or without an
    open stream). So the stream stays open for the life of the process (a
    few KB; ``capture``, which its callback would write into, stays alive with
    it), and sounddevice's exit handler, whose only job is to call
    ``Pa_Terminate``, is unregistered: the operating system releases
    everything at exit, and the process exits normally instead of aborting.
    """
    _ABANDONED.append((stream, capture))
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)


def has_native_callback_support(sd: ModuleType) -> bool:
    """Whether this sounddevice lets a C function be the stream callback."""
    return hasattr(sd, "_StreamBase") and hasattr(sd, "_ffi")


def _python_callback(capture: _core.Capture) -> Callable[..., None]:
    # A weak reference: sounddevice's stream and its callback form a reference
    # cycle, so a strong one would keep the ring's memory (through the
    # Capture) alive after the recorder is gone, until the cyclic garbage
    # collector happens to run. The recorder holds the Capture, and closes the
    # stream (so no callback runs) before it lets go of it.
    capture_ref = weakref.ref(capture)

    def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
        target = capture_ref()
        if target is None:  # pragma: no cover - the stream is closed before the Capture goes
            return
        flags = (0x1 if status.input_underflow else 0) | (0x2 if status.input_overflow else 0)
        target.write_block(indata, frames, time.inputBufferAdcTime, time.currentTime, flags)

    return callback

