"""The command line's output file: its format, the subtype for each sample format, opening it."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Optional, Protocol, cast

import numpy as np

from .errors import CliError, UsageError

FORMATS = ("wav", "flac")

#: The file subtype for each (format, sample format). Every pair is lossless
#: except float32 in FLAC, which has no float samples: 24-bit PCM, clipped to
#: [-1, 1]. 8-bit samples go through int16 (soundfile writes no 8-bit arrays),
#: exactly; WAV's 8-bit PCM is unsigned and FLAC's signed, so the sign of the
#: bytes changes but no value is lost. int32 in FLAC is refused (FLAC holds 24
#: bits at most), see `subtype`.
SUBTYPES = {
    ("wav", "float32"): "FLOAT",
    ("wav", "int32"): "PCM_32",
    ("wav", "int16"): "PCM_16",
    ("wav", "int8"): "PCM_U8",
    ("wav", "uint8"): "PCM_U8",
    ("flac", "float32"): "PCM_24",
    ("flac", "int16"): "PCM_16",
    ("flac", "int8"): "PCM_S8",
    ("flac", "uint8"): "PCM_S8",
}
_SAMPLE_BYTES = {"FLOAT": 4, "PCM_32": 4, "PCM_24": 3, "PCM_16": 2, "PCM_S8": 1, "PCM_U8": 1}

FLAC_MAX_CHANNELS = 8
#: RIFF sizes are 32-bit: a WAV file's data must stay below 4 GiB (minus room for the header).
WAV_MAX_DATA_BYTES = 2**32 - 2**16


def file_format(path: str, fmt: Optional[str]) -> str:
    """``fmt``, or the format that ``path``'s suffix names.

    Raises
    ------
    UsageError
        If ``fmt`` is None and the suffix is neither ``.wav`` nor ``.flac``.
    """
    if fmt is not None:
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UsageError(
            f"argument --format: cannot tell the format from {path!r}: "
            f"name the file *.wav or *.flac, or give --format {{{','.join(FORMATS)}}}"
        )
    return suffix


def subtype(fmt: str, dtype: str, channels: int) -> str:
    """The file subtype that holds ``dtype`` samples in format ``fmt`` (see `SUBTYPES`).

    Raises
    ------
    UsageError
        For int32 in FLAC (it would drop 8 bits) and more than 8 channels in FLAC.
    """
    if (fmt, dtype) not in SUBTYPES:
        raise UsageError(
            "argument --dtype: FLAC holds at most 24 bits, so --dtype int32 would lose the low 8 bits; "
            "use --format wav (32-bit PCM), or --dtype float32 or int16 for FLAC"
        )
    if fmt == "flac" and channels > FLAC_MAX_CHANNELS:
        raise UsageError(
            f"argument --channels: FLAC holds at most {FLAC_MAX_CHANNELS} channels, got {channels}; use --format wav"
        )
    return SUBTYPES[fmt, dtype]


def max_frames(fmt: str, file_subtype: str, channels: int) -> Optional[int]:
    """The most frames a file of this format can hold (None: no practical limit)."""
    if fmt != "wav":
        return None
    return WAV_MAX_DATA_BYTES // (_SAMPLE_BYTES[file_subtype] * channels)


class AudioFile(Protocol):
    """What the command line uses of an open ``soundfile.SoundFile`` (soundfile publishes no types)."""

    def write(self, data: np.ndarray) -> None:
        """Append ``(frames, channels)`` samples."""

    def flush(self) -> None:
        """Write out what is buffered, header included: the file is readable as it stands."""

    def __enter__(self) -> AudioFile:
        """The file itself."""

    def __exit__(self, *exc_info: object) -> None:
        """Close the file, completing its header."""


def import_soundfile() -> ModuleType:
    """The soundfile module.

    Raises
    ------
    CliError
        If soundfile (or its libsndfile) is missing, saying what to install.
    """
    try:
        import soundfile
    except (ImportError, OSError) as error:
        raise CliError(
            f"recording to a file needs soundfile ({error}): pip install 'audioring[cli]' (or soundfile)"
        ) from None
    return cast(ModuleType, soundfile)  # soundfile publishes no types: mypy sees Any


def check_writable(path: str) -> None:
    """Fail now, not after the recording started, if ``path`` cannot be created or written.

    An existing file is left as it is.

    Raises
    ------
    CliError
        With the operating system's reason (libsndfile would only say "System error").
    """
    existed = os.path.lexists(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
    except OSError as error:
        raise CliError(f"cannot write {path!r}: {error.strerror or error}") from None
    if not existed:
        os.unlink(path)


def open_output(path: str, fmt: str, file_subtype: str, channels: int, rate: int) -> AudioFile:
    """Open ``path`` for writing with soundfile, replacing an existing file.

    Returns
    -------
    AudioFile
        A ``soundfile.SoundFile``.

    Raises
    ------
    CliError
        If the file cannot be created.
    """
    soundfile = import_soundfile()
    try:
        file: AudioFile = soundfile.SoundFile(path, "w", samplerate=rate, channels=channels, format=fmt.upper(),
                                              subtype=file_subtype)
    except (OSError, RuntimeError) as error:  # soundfile.LibsndfileError is a RuntimeError
        raise CliError(f"cannot write {path!r}: {error}") from None
    return file


def file_samples(block: np.ndarray, file_subtype: str) -> np.ndarray:
    """``block`` as soundfile should write it into a file of ``file_subtype``.

    float32 into PCM is clipped to [-1, 1] (libsndfile would wrap around);
    8-bit samples become int16 ``<< 8``, which libsndfile turns back into
    the same 8-bit values.
    """
    samples: np.ndarray = block
    if block.dtype == np.float32 and file_subtype != "FLOAT":
        samples = np.clip(block, -1.0, 1.0)
    elif block.dtype == np.int8:
        samples = block.astype(np.int16) << 8
    elif block.dtype == np.uint8:
        samples = (block.astype(np.int16) - 128) << 8
    return samples
