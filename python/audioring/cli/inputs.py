"""Which input the command line captures from: a PortAudio device, the virtual input, or the fallback."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from types import ModuleType
from typing import Any, Callable, Optional, Union

from .. import AudioRecord, VirtualInput, _devices
from .._sources import as_device
from .errors import CliError, UsageError
from .options import CaptureOptions, mapping

#: Sampling rate of the virtual input when --rate is not given. The virtual input takes any
#: --channels the ring fits in memory: AudioRecord checks that before it allocates (a MemoryError).
VIRTUAL_RATE = 48000
#: Channels when --channels is not given (fewer if the device has fewer).
DEFAULT_CHANNELS = 2

VIRTUAL_SYNTAX = "virtual, virtual:sine:HZ[,HZ...], virtual:noise or virtual:ramp"

#: What to do when PortAudio sees no input device (``devices`` and ``doctor`` say it).
NO_DEVICE_FIX = (
    "start a sound server (PulseAudio: `pulseaudio --start`, or JACK) or connect a sound card, "
    "then check again; `--device virtual` records from the built-in virtual input meanwhile"
)


@dataclasses.dataclass(frozen=True)
class Input:
    """An input chosen from ``--device`` (or the default), with the settings to open it.

    Attributes
    ----------
    device : int, VirtualInput or list
        What `AudioRecord` takes as ``device`` (a list: several devices,
        each ``(device, mapping)``, aligned onto the one at index ``clock``).
    name : str
        For messages, e.g. ``'default' (ALSA)`` or ``virtual:sine:1000``.
    channels, rate : int
        The channel count and sampling rate to record with.
    explicit : bool
        Whether ``--device`` named it: then a failure to open it is an error;
        otherwise the CLI falls back to the virtual input.
    device_rate, mapping, quality, latency, blocksize
        As `AudioRecord` takes them (``--device-rate``, ``--mapping``, ``--quality``, ``--latency``,
        ``--blocksize``).
    fallback : bool
        Whether the virtual input may stand in for a default device that fails
        to open (False with ``--no-fallback``).
    fell_back : str, optional
        Set when the virtual input stands in for the default device: why, in a
        few words (``no input device``), for the summary.
    """

    device: Union[int, VirtualInput, list[Any]]
    name: str
    channels: int
    rate: int
    explicit: bool
    device_rate: Optional[int] = None
    mapping: Optional[list[int]] = None
    quality: str = "high"
    latency: Union[float, str, None] = None
    blocksize: int = 0
    fallback: bool = True
    fell_back: Optional[str] = None
    clock: int = 0

    @property
    def summary(self) -> str:
        """The input as the closing summary names it: ``virtual:sine:1000 (no input device: fallback)``."""
        return self.name if self.fell_back is None else f"{self.name} ({self.fell_back}: fallback)"


def parse_virtual(spec: str) -> Optional[VirtualInput]:
    """The `VirtualInput` that ``--device`` ``spec`` names, or None if ``spec`` is not ``virtual...``.

    Raises
    ------
    UsageError
        For an unknown signal or a bad frequency.
    """
    kind, _, rest = spec.partition(":")
    if kind != "virtual":
        return None
    signal, _, frequencies = rest.partition(":")
    signal = signal or "sine"
    invalid = UsageError(f"argument --device: invalid virtual input {spec!r} (use {VIRTUAL_SYNTAX})")
    if frequencies and signal != "sine":  # only a sine takes frequencies
        raise invalid
    if not frequencies:
        try:
            return VirtualInput(signal)
        except ValueError:  # VirtualInput knows its signals: an unknown one is refused there
            raise invalid from None
    try:
        hz = [float(f) for f in frequencies.split(",")]
        return VirtualInput("sine", hz if len(hz) > 1 else hz[0])
    except ValueError:
        raise UsageError(
            f"argument --device: invalid frequency in {spec!r} (Hz > 0, e.g. virtual:sine:440 or virtual:sine:440,880)"
        ) from None


def choose_input(options: CaptureOptions, notice: Callable[[str], None]) -> Input:
    """Resolve ``--device`` (None: the default input) and settle channels and rate.

    Without ``--device``, no PortAudio, no input device or no default input
    means the virtual input, announced through ``notice`` (`fallback`).

    Raises
    ------
    UsageError
        If ``--device`` names no input device (listing the available ones) or
        ``--channels`` exceeds what the device has.
    CliError
        If a device is named but PortAudio cannot be loaded, or there is no
        usable default input and ``options.fallback`` is False (``--no-fallback``).
    """
    if options.devices:
        return several_inputs(options)
    spec, channels, rate = options.device, options.channels, options.rate

    def conversion(inp: Input) -> Input:
        return dataclasses.replace(inp, device_rate=options.device_rate, mapping=options.mapping,
                                   quality=options.quality, latency=options.latency, blocksize=options.blocksize,
                                   fallback=options.fallback)

    if options.mapping is not None:
        if channels is not None and channels != len(options.mapping):
            raise UsageError(f"argument --mapping: names {len(options.mapping)} inputs for --channels {channels}")
        channels = len(options.mapping)
    if spec is not None:
        virtual = parse_virtual(spec)
        if virtual is not None:
            return conversion(_virtual_input(virtual, channels, rate, explicit=True))
        try:
            sd = _devices.import_sounddevice()
        except (OSError, ImportError) as error:
            raise CliError(str(error)) from None
        try:
            info = _devices.resolve_input_device(sd, int(spec) if spec.isdigit() else spec)
        except ValueError as error:
            raise UsageError(f"argument --device: {error}") from None
        explicit = True
    else:
        try:
            sd = _devices.import_sounddevice()
            info = _devices.resolve_input_device(sd, None)
        except (OSError, ImportError, ValueError) as error:
            return conversion(fallback(str(error), "no input device", options.fallback, channels, rate, notice))
        explicit = False
    name = f"{info['name']!r} ({sd.query_hostapis(info['hostapi'])['name']})"
    most = int(info["max_input_channels"])
    if options.mapping is None and channels is not None and channels > most:
        raise UsageError(f"argument --channels: must be in 1..{most} for input device {name}, got {channels}")
    return conversion(Input(
        device=int(info["index"]),
        name=name,
        channels=min(DEFAULT_CHANNELS, most) if channels is None else channels,
        rate=int(info["default_samplerate"]) if rate is None else rate,
        explicit=explicit,
    ))


def several_inputs(options: CaptureOptions) -> Input:
    """Several ``--device`` into one aligned recording: each resolved, with its inputs (``NAME@N,N``).

    A device without ``@`` records its first inputs: ``--channels`` split
    equally over such devices, or without ``--channels`` up to 2 each.

    Raises
    ------
    UsageError
        For ``--mapping`` or ``--device-rate`` (per device: ``@``, and each
        device runs at ``--rate`` if it can), a device that does not exist,
        an ``@`` list that is not input numbers, or ``--clock`` past the list.
    CliError
        If PortAudio cannot be loaded for a device that is not virtual.
    """
    for name, value in (("--mapping", options.mapping), ("--device-rate", options.device_rate)):
        if value is not None:
            raise UsageError(f"argument {name}: not with several --device; give each device its inputs as "
                             "-d NAME@1,2 (each device runs at --rate if it can, else it is converted)")
    if options.clock > len(options.devices):
        raise UsageError(f"argument --clock: must be in 1..{len(options.devices)} (one of the --device), "
                         f"got {options.clock}")
    chosen = [_one_of_several(spec, options.channels) for spec in options.devices]
    master_rate = chosen[options.clock - 1][2]
    channels = options.channels or sum(len(mapping) for _, mapping, _, _ in chosen if mapping is not None)
    return Input(
        device=[(device, mapping) if mapping is not None else device for device, mapping, _, _ in chosen],
        name=" + ".join(name for _, _, _, name in chosen),
        channels=channels,
        rate=options.rate or master_rate,
        explicit=True,
        quality=options.quality,
        latency=options.latency,
        blocksize=options.blocksize,
        fallback=False,
        clock=options.clock - 1,
    )


def _one_of_several(spec: str, channels: Optional[int],
                    ) -> tuple[Union[int, VirtualInput], Optional[list[int]], int, str]:
    """(device, its inputs or None, its default rate, its name) for one ``--device`` of several."""
    name, inputs = spec, None
    if "@" in spec:
        name, _, listed = spec.rpartition("@")
        try:
            inputs = mapping(listed)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"argument --device: {spec!r}: after @ the device's inputs {error}") from None
    virtual = parse_virtual(name)
    if virtual is not None:
        default = None if inputs or channels else list(range(1, DEFAULT_CHANNELS + 1))
        return virtual, inputs or default, VIRTUAL_RATE, virtual.name
    try:
        sd = _devices.import_sounddevice()
    except (OSError, ImportError) as error:
        raise CliError(str(error)) from None
    try:
        info = _devices.resolve_input_device(sd, int(name) if name.isdigit() else name)
    except ValueError as error:
        raise UsageError(f"argument --device: {error}") from None
    if inputs is None and not channels:
        inputs = list(range(1, min(DEFAULT_CHANNELS, int(info["max_input_channels"])) + 1))
    return int(info["index"]), inputs, int(info["default_samplerate"]), repr(info["name"])


def default_input_index(sd: ModuleType) -> Optional[int]:
    """PortAudio's default input device, or None if it has none."""
    try:
        return int(sd.query_devices(kind="input")["index"])
    except (ValueError, sd.PortAudioError):
        return None


def fallback(reason: str, missing: str, allowed: bool, channels: Optional[int], rate: Optional[int],
             notice: Callable[[str], None]) -> Input:
    """The virtual input instead of a missing or failing default device, with a notice saying why.

    It keeps a first interactive run from ending in an error, and is said
    twice so that it is never taken for the real input: in the notice, and in
    the summary's ``input:`` line (``missing``, e.g. ``no input device``).

    Raises
    ------
    CliError
        If not ``allowed`` (``--no-fallback``): a script must be able to tell
        that nothing real was recorded.
    """
    if not allowed:
        raise CliError(f"no usable input device: {reason}; --no-fallback refuses the virtual input in its place. "
                       "Name a device with --device (see `audioring devices`); `audioring doctor` says what is missing")
    virtual = VirtualInput("sine")
    notice(
        f"no usable input device: {reason}\n"
        f"Using the built-in virtual input {virtual.name} (a 1 kHz test tone) instead (--no-fallback makes this an "
        "error). Name a device with --device (see `audioring devices`); `audioring doctor` says what is missing."
    )
    return dataclasses.replace(_virtual_input(virtual, channels, rate, explicit=False), fell_back=missing)


def start_recorder(inp: Input, dtype: str, seconds: float, notice: Callable[[str], None],
                   share: Optional[str] = None) -> tuple[AudioRecord, Input]:
    """Open and start an `AudioRecord` on ``inp`` whose ring holds ``seconds`` of audio (shared as ``share``).

    A default device that is listed but fails to open or start (a sound
    server gone since PortAudio scanned, say) gives way to the virtual input
    (`fallback`; with ``--no-fallback`` a `CliError`).

    Returns
    -------
    (AudioRecord, Input)
        The recording recorder and the input it really records from.

    Raises
    ------
    UsageError
        If the device refuses the rate or channel count, or the ring does not fit in memory.
    CliError
        If a device named with ``--device`` fails to open, or the default
        device fails and ``inp.fallback`` is False.
    """
    buffer_frames = max(1, int(seconds * inp.rate))
    if isinstance(inp.device, list):  # several devices, each named: a failure is an error, no fallback
        try:
            return _announced(_started(inp, dtype, buffer_frames, share), notice), inp
        except Exception as error:
            sd = sys.modules.get("sounddevice")  # loaded if any of them is a PortAudio device
            if sd is None or not isinstance(error, sd.PortAudioError):
                raise
            raise CliError(f"input devices {inp.name} failed: {error}") from None
    if not as_device(inp.device).portaudio:  # as AudioRecord resolves it: no PortAudio failure to fall back from
        return _announced(_started(inp, dtype, buffer_frames, share), notice), inp
    sd = _devices.import_sounddevice()  # already loaded by choose_input
    try:
        return _announced(_started(inp, dtype, buffer_frames, share), notice), inp
    except sd.PortAudioError as error:
        if inp.explicit:
            raise CliError(f"input device {inp.name} failed: {error}") from None
        inp = dataclasses.replace(
            fallback(f"the default input device {inp.name} failed to open: {error}",
                     "the default input device failed to open", inp.fallback, inp.channels, inp.rate, notice),
            device_rate=None, mapping=inp.mapping, quality=inp.quality, latency=inp.latency, blocksize=inp.blocksize,
        )
    return _announced(_started(inp, dtype, buffer_frames, share), notice), inp


def latency_text(rec: AudioRecord) -> str:
    """The input latency the device reports, for the opening notice (what ``--latency``/``--blocksize`` set)."""
    return f"input latency {rec.latency * 1000:.1f} ms"


def _announced(rec: AudioRecord, notice: Callable[[str], None]) -> AudioRecord:
    """``rec``, after saying once that it converts the device's rate, if it does."""
    if rec.device_rate != rec.sampling_rate:
        notice(f"device runs at {rec.device_rate} Hz; converting to {rec.sampling_rate} Hz (quality {rec.quality})")
    return rec


def _started(inp: Input, dtype: str, buffer_frames: int, share: Optional[str]) -> AudioRecord:
    try:
        rec = AudioRecord(inp.channels, inp.rate, buffer_frames, device=inp.device, dtype=dtype,
                          blocksize=inp.blocksize, latency=inp.latency, device_rate=inp.device_rate,
                          mapping=inp.mapping, quality=inp.quality, share=share, clock=inp.clock)
    except ValueError as error:  # the device refuses the rate, channels or mapping; a virtual frequency too high
        raise UsageError(str(error)) from None
    except MemoryError as error:  # checked before anything is allocated: the message names every size
        raise UsageError(
            f"argument --buffer-seconds: {buffer_frames} frames x {inp.channels} channels ({dtype}) do not fit in "
            f"memory; give fewer --channels or a shorter --buffer-seconds ({error})") from None
    try:
        rec.start_recording()
    except BaseException:
        rec.close()
        raise
    return rec


def _virtual_input(virtual: VirtualInput, channels: Optional[int], rate: Optional[int], explicit: bool) -> Input:
    if channels is None:
        channels = len(virtual.frequencies) if len(virtual.frequencies) > 1 else DEFAULT_CHANNELS
    return Input(virtual, virtual.name, channels, VIRTUAL_RATE if rate is None else rate, explicit)

