"""Which file a recording goes into: its format, subtype and split size, checked with advice that fits.

The table of formats is native (``csrc/audioring/file_format.cpp``:
what each format holds and its lossless subtype for each sample format);
this module chooses from it for a recording and words the refusals. A
refusal always names a format that would take the recording, never one
that would refuse it in turn.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any, Optional

from . import _core

#: The formats, by name, as the native table gives them (in the order it lists them).
FORMATS: dict[str, dict[str, Any]] = {info["name"]: info for info in _core.file_formats()}
#: What names a format in a file name: its own name, plus the other usual suffixes.
SUFFIXES = {**{name: name for name in FORMATS}, "bwf": "wav", "wave": "wav", "snd": "au", "pcm": "raw"}

_DURATION_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SPLIT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


@dataclasses.dataclass(frozen=True)
class FileChoice:
    """A format and subtype checked for a recording of ``channels`` of ``dtype``."""

    format: str
    subtype: str
    channels: int
    dtype: str

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame in the file (before compression, for FLAC)."""
        return self.channels * int(_core.subtype_bytes(self.subtype))

    @property
    def streams(self) -> bool:
        """Whether a pipe can take it."""
        return bool(FORMATS[self.format]["streams"])

    @property
    def max_frames(self) -> Optional[int]:
        """The most frames one file of this format holds (None: no limit a recording reaches)."""
        limit = FORMATS[self.format]["max_data_bytes"]
        return limit // self.frame_bytes if limit else None


def format_from_path(path: str) -> Optional[str]:
    """The format a file name's suffix names, or None."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    return SUFFIXES.get(suffix)


def choose(path: str, fmt: Optional[str], subtype: Optional[str], dtype: str, channels: int,
           argument: str = "format") -> FileChoice:
    """Check ``fmt`` (default: from ``path``'s suffix) and ``subtype`` (default: lossless for ``dtype``).

    ``argument`` names the format argument in messages (``format``, or the
    command line's ``--format``); the subtype's is derived from it.

    Raises
    ------
    ValueError
        Naming the argument, what was asked and a choice that fits.
    """
    subtype_argument = argument.replace("format", "subtype")
    if fmt is None:
        fmt = format_from_path(path)
        if fmt is None:
            raise ValueError(f"{argument}: cannot tell the format from {path!r}: name the file "
                             f"{', '.join('*.' + name for name in FORMATS)}, or give {argument}")
    elif not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise ValueError(f"{argument} must be one of {', '.join(FORMATS)}, got {fmt!r}")
    fmt = fmt.lower()
    info = FORMATS[fmt]
    if info["max_channels"] and channels > info["max_channels"]:
        raise ValueError(f"{argument}: {fmt.upper()} holds at most {info['max_channels']} channels, got {channels}; "
                         f"use {_fitting(channels, dtype)}")
    if subtype is None:
        subtype = info["default_subtypes"][dtype]
        if subtype is None:
            raise ValueError(f"{argument}: {fmt.upper()} holds at most 24 bits, so {dtype} samples would lose "
                             f"their low 8 bits; use {_fitting(channels, dtype)}, or give {subtype_argument}="
                             f"'PCM_24' to keep the top 24 bits")
    elif not isinstance(subtype, str) or subtype.upper() not in info["subtypes"]:
        raise ValueError(f"{subtype_argument} for {fmt.upper()} must be one of {', '.join(info['subtypes'])}, "
                         f"got {subtype!r}")
    return FileChoice(fmt, subtype.upper(), channels, dtype)


def _fitting(channels: int, dtype: str) -> str:
    """Formats that take any length of ``channels`` of ``dtype`` losslessly, for advice."""
    fitting = [name for name, info in FORMATS.items()
               if not info["streams"] and (not info["max_channels"] or channels <= info["max_channels"])
               and info["default_subtypes"][dtype] is not None]
    return " or ".join(f"'{name}'" for name in fitting[:2])  # 'wav' (RF64 past 4 GiB) first


def split_frames(split: object, choice: FileChoice, rate: int, argument: str = "split") -> int:
    """Frames per part for ``split``: frames (an int), or a duration or size (``"1h"``, ``"90s"``, ``"2GiB"``).

    A size counts the audio data of a part (before compression, for FLAC).

    Raises
    ------
    TypeError, ValueError
        Naming ``argument``, for anything else, or a split shorter than a frame.
    """
    if isinstance(split, bool) or not isinstance(split, (int, str)):
        raise TypeError(f"{argument} must be frames (an int) or a string such as '1h', '30min', '90s' or '2GiB', "
                        f"got {split!r}")
    if isinstance(split, int):
        frames = split
    else:
        frames = _parse_split(split, choice, rate, argument)
    if frames < 1:
        raise ValueError(f"{argument} must be at least one frame, got {split!r}")
    limit = choice.max_frames
    if limit is not None and frames > limit:
        raise ValueError(f"{argument}: a {choice.format.upper()} file holds at most {limit} frames "
                         f"({limit / rate:.0f} s) of this audio, got {split!r}; split smaller, or use "
                         f"{_fitting(choice.channels, choice.dtype)}")
    return frames


def _parse_split(text: str, choice: FileChoice, rate: int, argument: str) -> int:
    match = _SPLIT.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or (unit not in _DURATION_UNITS and unit not in _SIZE_UNITS):
        raise ValueError(f"{argument} must be a duration (s, min, h) or a size (B, kB, MB, GB, KiB, MiB, GiB), "
                         f"e.g. '1h' or '2GiB'; got {text!r}")
    number = float(match.group(1))
    if unit in _DURATION_UNITS:
        return math.floor(number * _DURATION_UNITS[unit] * rate)
    return math.floor(number * _SIZE_UNITS[unit]) // choice.frame_bytes
