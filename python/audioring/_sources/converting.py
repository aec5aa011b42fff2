"""Recording at a rate (and channel selection) the device does not deliver.

`plan_device` decides how a device is opened for a recording: at which rate,
with how many inputs, which of them become the recording's channels.
`ConvertingSource` then wraps the device's source: the device's callback
fills a capture ring at the device's rate, and a native converter thread
(``_core.Converter``, libsoxr, no GIL) turns it into the ring users read.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union, cast

from .. import _core, _devices
from .._validate import as_device
from .._virtual import VirtualInput
from . import Source

#: The rates `plan_device` tries when it lists what a device accepts.
STANDARD_RATES: tuple[int, ...] = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """How a device is opened for a recording.

    Attributes
    ----------
    rate : int
        The rate the device runs at.
    channels : int
        The inputs it is opened with.
    mapping : list of int
        0-based device input of each recorded channel.
    """

    rate: int
    channels: int
    mapping: list[int]

    def converts(self, sampling_rate: int, channels: int) -> bool:
        """Whether recording ``channels`` at ``sampling_rate`` needs the converter."""
        return self.rate != sampling_rate or self.mapping != list(range(channels)) or self.channels != channels


def accepted_rates(sd: Any, info: dict[str, Any]) -> list[int]:
    """The `STANDARD_RATES` that PortAudio accepts for the input device ``info``."""
    return [rate for rate in STANDARD_RATES if _accepts_rate(sd, info, rate)]


def _accepts_rate(sd: Any, info: dict[str, Any], rate: int) -> bool:
    try:
        sd.check_input_settings(device=info["index"], channels=1, dtype="float32", samplerate=rate)
    except sd.PortAudioError:
        return False
    return True


def _accepts_channels(sd: Any, info: dict[str, Any], rate: int, channels: int) -> bool:
    try:
        sd.check_input_settings(device=info["index"], channels=channels, dtype="float32", samplerate=rate)
    except sd.PortAudioError:
        return False
    return True


def plan_device(
    device: Union[int, str, VirtualInput, None],
    *,
    channels: int,
    sampling_rate: int,
    device_rate: Optional[int],
    mapping: Optional[list[int]],
) -> DevicePlan:
    """Decide the device's rate and inputs for a recording (nothing is opened).

    Parameters
    ----------
    device : int, str, VirtualInput or None
        As `AudioRecord` takes it.
    channels, sampling_rate : int
        What the recording holds.
    device_rate : int or None
        The rate asked for the device; None: ``sampling_rate`` if the device
        accepts it, else its default rate.
    mapping : list of int or None
        1-based device inputs, validated by `audioring._validate.as_mapping`.

    Raises
    ------
    ValueError
        If the device refuses ``device_rate`` (listing the rates it accepts)
        or ``mapping`` names an input it does not have.
    TypeError
        If ``device`` is of the wrong type.
    """
    if isinstance(device, VirtualInput):
        return _plan_virtual(device, channels, sampling_rate, device_rate, mapping)
    device = cast(Union[int, str, None], as_device(device))
    sd = _devices.import_sounddevice()
    info = _devices.resolve_input_device(sd, device)
    if device_rate is None and mapping is None and _accepts_rate(sd, info, sampling_rate):
        return DevicePlan(sampling_rate, channels, list(range(channels)))  # no conversion: the path of old
    name, inputs = info["name"], int(info["max_input_channels"])
    if mapping is not None and max(mapping) > inputs:
        raise ValueError(f"mapping names input {max(mapping)} but device {name!r} has {inputs} input channels")
    if device_rate is None:
        rate = sampling_rate if _accepts_rate(sd, info, sampling_rate) else int(round(info["default_samplerate"]))
    elif _accepts_rate(sd, info, device_rate):
        rate = device_rate
    else:
        rates = accepted_rates(sd, info)
        accepted = ", ".join(map(str, rates)) if rates else f"none of {', '.join(map(str, STANDARD_RATES))}"
        raise ValueError(f"device_rate={device_rate}: device {name!r} does not accept it (it accepts {accepted} Hz)")
    if mapping is None:
        return DevicePlan(rate, channels, list(range(channels)))
    wanted = max(mapping)
    # Some host APIs open a device only with all of its inputs: then take them
    # all and keep the mapped ones.
    opened = wanted if wanted == inputs or _accepts_channels(sd, info, rate, wanted) else inputs
    return DevicePlan(rate, opened, [m - 1 for m in mapping])


def _plan_virtual(
    config: VirtualInput, channels: int, sampling_rate: int, device_rate: Optional[int], mapping: Optional[list[int]]
) -> DevicePlan:
    if config.rate is None:
        rate = sampling_rate if device_rate is None else device_rate
    elif device_rate is None or device_rate == config.rate:
        rate = config.rate
    else:
        raise ValueError(f"device_rate={device_rate}: device {config.name!r} accepts only {config.rate} Hz")
    if mapping is None:
        # Opened with the recording's channels (VirtualSource.open checks a
        # sine's frequencies against them).
        return DevicePlan(rate, channels, list(range(channels)))
    # With a mapping, a sine with a frequency per channel has that many
    # inputs; otherwise the virtual device has whatever inputs are asked of it.
    per_channel = config.signal == "sine" and len(config.frequencies) > 1
    inputs = len(config.frequencies) if per_channel else None
    if inputs is not None and max(mapping) > inputs:
        raise ValueError(f"mapping names input {max(mapping)} but device {config.name!r} has {inputs} input channels")
    return DevicePlan(rate, max(mapping) if inputs is None else inputs, [m - 1 for m in mapping])


class ConvertingSource:
    """A device's source whose capture ring a converter thread turns into the recording's ring.

    Start order: the converter, then the device (the converter must be ready
    for the first block); stop order: the device, then the converter (which
    converts what is left and flushes the resampler, so that the recording
    ends with the conversion of every frame the device delivered).
    """

    def __init__(self, device: Source, converter: _core.Converter, plan: DevicePlan) -> None:
        self._device = device
        self._converter = converter
        self.plan = plan

    @property
    def name(self) -> str:
        """The device's name."""
        return self._device.name

    @property
    def hostapi(self) -> str:
        """The device's host API."""
        return self._device.hostapi

    @property
    def driver(self) -> str:
        """How the device's blocks arrive."""
        return self._device.driver

    @property
    def latency(self) -> float:
        """The device's input latency in seconds (the resampler's delay is `AudioRecord.conversion_delay`)."""
        return self._device.latency

    @property
    def time(self) -> float:
        """The device's clock."""
        return self._device.time

    @property
    def started(self) -> bool:
        """Whether the device or the converter thread runs (asked of them, never a stale flag)."""
        return self._device.started or self._converter.running

    def ensure_alive(self) -> None:
        """Raise if the device went away."""
        self._device.ensure_alive()

    def start(self) -> None:
        """Start the converter thread, then the device."""
        self._converter.start()
        try:
            self._device.start()
        except BaseException:
            self._converter.stop()
            raise

    def stop(self) -> None:
        """Stop the device, then convert what is left and stop the converter."""
        try:
            self._device.stop()
        finally:
            self._converter.stop()

    def close(self) -> None:
        """Close the device (the converter is stopped by then); again: a no-op."""
        try:
            self._converter.stop()
        finally:
            self._device.close()
