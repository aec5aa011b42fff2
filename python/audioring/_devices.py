"""PortAudio access through sounddevice: loading it, finding input devices and the rates they accept.

(Streams: _sources/portaudio.py.)
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Union, cast

#: The rates `accepted_rates` tries when it lists what a device accepts.
STANDARD_RATES: tuple[int, ...] = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)

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


def input_devices(sd: ModuleType) -> list[dict[str, Any]]:
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


def resolve_input_device(sd: ModuleType, device: Union[int, str, None]) -> dict[str, Any]:
    """The sounddevice description of the input device ``device`` (None: the default input).

    Raises
    ------
    ValueError
        If no input device matches, naming the available ones.
    """
    try:
        info: dict[str, Any] = sd.query_devices(device, "input")
        return info
    # OverflowError: an index beyond C int (cffi), e.g. 2**70; it is just another unknown device.
    except (ValueError, OverflowError, sd.PortAudioError) as error:
        wanted = "no default input device" if device is None else f"device {device!r}: {error}"
        raise ValueError(f"{wanted}. Available input devices: {describe_input_devices(sd)}") from None


def hostapi_name(sd: ModuleType, device: dict[str, Any]) -> str:
    """The name of the host API of a device that :func:`resolve_input_device` returned."""
    return str(sd.query_hostapis(device["hostapi"])["name"])


def has_native_callback_support(sd: ModuleType) -> bool:
    """Whether this sounddevice lets a C function be the stream callback."""
    return hasattr(sd, "_StreamBase") and hasattr(sd, "_ffi")



def accepts(sd: ModuleType, device: dict[str, Any], rate: int, channels: int = 1) -> bool:
    """Whether PortAudio opens the input ``device`` (as `resolve_input_device` returned it) at this rate and width."""
    try:
        sd.check_input_settings(device=device["index"], channels=channels, dtype="float32", samplerate=rate)
    except sd.PortAudioError:
        return False
    return True


def accepted_rates(sd: ModuleType, device: dict[str, Any]) -> list[int]:
    """The `STANDARD_RATES` that PortAudio accepts for the input ``device``."""
    return [rate for rate in STANDARD_RATES if accepts(sd, device, rate)]
