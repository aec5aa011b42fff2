"""``audioring doctor``: check PortAudio, the input devices, the native callback driver and the extras."""

from __future__ import annotations

import argparse
import platform
from types import ModuleType
from typing import Optional

from ... import __version__, _core, _devices
from ..inputs import NO_DEVICE_FIX, default_input_index
from ..parser import Command


def run(args: argparse.Namespace) -> int:
    """Print what was found, then what to fix: exit status 1 if anything needs fixing."""
    problems: list[str] = []  # each says what to do, printed under "to fix:"
    print(f"audioring {__version__} (Python {platform.python_version()}, {platform.platform()})")
    sd = _check_portaudio(problems)
    if sd is not None:
        _check_devices(sd, problems)
        _check_native_driver(sd)
    _check_extras(problems)
    return _verdict(problems)


def _check_portaudio(problems: list[str]) -> Optional[ModuleType]:
    """sounddevice, and PortAudio's version (None, with the problem added, if either is missing)."""
    try:
        sd = _devices.import_sounddevice()
    except (OSError, ImportError) as error:
        print("PortAudio: missing")
        problems.append(str(error))
        return None
    print(f"PortAudio: {sd.get_portaudio_version()[1]} (sounddevice {sd.__version__})")
    return sd


def _check_devices(sd: ModuleType, problems: list[str]) -> None:
    """The host APIs, the input devices, and whether the default input device opens."""
    hostapis = sd.query_hostapis()
    print("host APIs: " + (", ".join(f"{h['name']} ({len(h['devices'])} devices)" for h in hostapis) or "none"))
    devices = _devices.input_devices(sd)
    print(f"input devices: {len(devices)}")
    default = default_input_index(sd)
    if not devices:
        print("default input device: none")
        problems.append(f"no input device: {NO_DEVICE_FIX}")
        return
    if default is None:
        print("default input device: none")
        problems.append("no default input device: name one with --device (see `audioring devices`)")
        return
    info = sd.query_devices(default)
    try:
        sd.check_input_settings(device=default)
        opens = "opens"
    except sd.PortAudioError as error:
        opens = f"does NOT open: {error}"
        problems.append(f"the default input device does not open ({error}): is its sound server running?")
    print(f"default input device: {default} {info['name']!r} ({hostapis[info['hostapi']]['name']}, "
          f"{info['max_input_channels']} ch, {info['default_samplerate']:g} Hz), {opens}")


def _check_native_driver(sd: ModuleType) -> None:
    """Whether this sounddevice lets PortAudio call the C callback (else capture takes the GIL): not a problem."""
    if _devices.has_native_callback_support(sd):
        print("native callback driver: available (capture runs without the GIL)")
    else:
        print(f"native callback driver: NOT available in sounddevice {sd.__version__}; "
              "capture uses a Python callback (`pip install -U sounddevice`)")


def _check_extras(problems: list[str]) -> None:
    """libsoxr (always there), and the CLI's extras: soundfile (needed by `record`) and rich (optional)."""
    # libsoxr is linked into the compiled module: if it were missing, audioring would not import.
    print(f"libsoxr: {_core.soxr_version().removeprefix('libsoxr-')} (sample-rate conversion)")
    try:
        import soundfile

        print(f"soundfile: {soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__})")
    except (ImportError, OSError) as error:
        print(f"soundfile: missing ({error})")
        problems.append("`record` needs soundfile: pip install 'audioring[cli]'")
    try:
        from importlib.metadata import version

        import rich  # noqa: F401

        print(f"rich: {version('rich')}")
    except ImportError:
        print("rich: missing (terminal display falls back to plain lines; pip install 'audioring[cli]')")


def _verdict(problems: list[str]) -> int:
    """The problems to fix (exit status 1), or "all good" (0)."""
    if problems:
        print("\nto fix:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print("\nall good")
    return 0


COMMAND = Command(
    name="doctor",
    help="check the audio set-up and say what to install",
    description="Check PortAudio, input devices and the native callback driver.",
    run=run,
)
