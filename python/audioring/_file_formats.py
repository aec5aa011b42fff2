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
class Spelling:
    """How refusals name the arguments and advise a format: Python's keywords or the command line's options."""

    format: str = "format"
    subtype: str = "subtype"
    split: str = "split"
    #: The recording's length: how a refusal names it, and how to ask for it.
    length: str = "frames"
    ask_length: str = "frames="
    #: Too many channels, or samples too wide: for Python the format is what to change.
    channels: str = "format"
    dtype: str = "format"
    option_style: bool = False

    def use(self, fmt: str) -> str:
        """How to ask for format ``fmt``."""
        return f"--format {fmt}" if self.option_style else f"format='{fmt}'"

    def use_subtype(self, subtype: str) -> str:
        """How to ask for subtype ``subtype``."""
        return f"--subtype {subtype}" if self.option_style else f"subtype='{subtype}'"


#: record_to()'s keywords.
PYTHON = Spelling()
#: The command line's options (``audioring record``).
COMMAND_LINE = Spelling("argument --format", "argument --subtype", "argument --split", "argument --seconds",
                        "--seconds", "argument --channels", "argument --dtype", option_style=True)


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
           spelling: Spelling = PYTHON) -> FileChoice:
    """Check ``fmt`` (default: from ``path``'s suffix) and ``subtype`` (default: lossless for ``dtype``).

    Raises
    ------
    ValueError
        Naming the argument (as ``spelling`` spells it), what was asked and a choice that fits.
    """
    if fmt is None:
        fmt = format_from_path(path)
        if fmt is None:
            raise ValueError(f"{spelling.format}: cannot tell the format from {path!r}: name the file "
                             f"{', '.join('*.' + name for name in FORMATS)}, or give {spelling.use('FORMAT')}")
    elif not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise ValueError(f"{spelling.format} must be one of {', '.join(FORMATS)}, got {fmt!r}")
    fmt = fmt.lower()
    info = FORMATS[fmt]
    if info["max_channels"] and channels > info["max_channels"]:
        raise ValueError(f"{spelling.channels}: {fmt.upper()} holds at most {info['max_channels']} channels, got "
                         f"{channels}; use {_fitting(channels, dtype, spelling)}")
    if subtype is None:
        subtype = info["default_subtypes"][dtype]
        if subtype is None:
            raise ValueError(f"{spelling.dtype}: {fmt.upper()} holds at most 24 bits, so {dtype} samples would lose "
                             f"their low 8 bits; use {_fitting(channels, dtype, spelling)}, or "
                             f"{spelling.use_subtype('PCM_24')} to keep the top 24 bits")
    elif not isinstance(subtype, str) or subtype.upper() not in info["subtypes"]:
        raise ValueError(f"{spelling.subtype} for {fmt.upper()} must be one of {', '.join(info['subtypes'])}, "
                         f"got {subtype!r}")
    return FileChoice(fmt, subtype.upper(), channels, dtype)


def _fitting(channels: int, dtype: str, spelling: Spelling) -> str:
    """Formats that take any length of ``channels`` of ``dtype`` losslessly, for advice."""
    fitting = [name for name, info in FORMATS.items()
               if not info["streams"] and (not info["max_channels"] or channels <= info["max_channels"])
               and info["default_subtypes"][dtype] is not None]
    return " or ".join(spelling.use(name) for name in fitting[:2])  # 'wav' (RF64 past 4 GiB) first


def longest_file(choice: FileChoice, total: Optional[int], split: int, rate: int,
                 spelling: Spelling = PYTHON) -> None:
    """Refuse a file longer than the format holds (AU: 4 GiB); ``total`` None and ``split`` 0: no end."""
    limit = choice.max_frames
    if limit is None:
        return
    holds = f"a {choice.format.upper()} file holds at most {limit / rate:.0f} s of this audio (4 GiB)"
    instead = f"or use {spelling.use('wav')} (RF64 past 4 GiB)"
    if split > limit:
        raise ValueError(f"{spelling.split}: {holds}; split smaller, {instead}")
    if not split and total is None:
        raise ValueError(f"{spelling.format}: {holds} and the recording has no end: give {spelling.ask_length} "
                         f"or a split within that, {instead}")
    if not split and total is not None and total > limit:
        raise ValueError(f"{spelling.length}: {holds}; record less, split, {instead}")


def split_frames(split: object, choice: FileChoice, rate: int, spelling: Spelling = PYTHON) -> int:
    """Frames per part for ``split``: frames (an int), or a duration or size (``"1h"``, ``"90s"``, ``"2GiB"``).

    A size counts the audio data of a part (before compression, for FLAC).

    Raises
    ------
    TypeError, ValueError
        Naming the argument, for anything else, or a split shorter than a frame.
    """
    argument = spelling.split
    if isinstance(split, bool) or not isinstance(split, (int, str)):
        raise TypeError(f"{argument} must be frames (an int) or a string such as '1h', '30min', '90s' or '2GiB', "
                        f"got {split!r}")
    if isinstance(split, int):
        frames = split
    else:
        frames = _parse_split(split, choice, rate, argument)
    if frames < 1:
        raise ValueError(f"{argument} must be at least one frame, got {split!r}")
    longest_file(choice, None, frames, rate, spelling)
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
