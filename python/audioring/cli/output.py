"""The command line's output: its format, the subtype for each sample format, where it goes, opening it."""

from __future__ import annotations

import dataclasses
import errno
import os
import select
import stat
from pathlib import Path
from types import ModuleType
from typing import Optional, Protocol, cast

import numpy as np

from .errors import CliError, UsageError

FORMATS = ("wav", "flac", "au")
#: The formats libsndfile writes to a pipe: their header does not hold the length (WAV's and
#: FLAC's do, and libsndfile must seek back to write it: it refuses WAV, and damages FLAC).
STREAM_FORMATS = ("au",)
#: OUT that means standard output.
STDOUT = "-"
#: Standard output's file descriptor.
STDOUT_FD = 1

#: The file subtype for each (format, sample format). Every pair is lossless
#: except float32 in FLAC, which has no float samples: 24-bit PCM, clipped to
#: [-1, 1]. 8-bit samples go through int16 (soundfile writes no 8-bit arrays),
#: exactly; WAV's 8-bit PCM is unsigned and FLAC's and AU's signed, so the sign
#: of the bytes changes but no value is lost. int32 in FLAC is refused (FLAC
#: holds 24 bits at most), see `subtype`.
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
    ("au", "float32"): "FLOAT",
    ("au", "int32"): "PCM_32",
    ("au", "int16"): "PCM_16",
    ("au", "int8"): "PCM_S8",
    ("au", "uint8"): "PCM_S8",
}
_SAMPLE_BYTES = {"FLOAT": 4, "PCM_32": 4, "PCM_24": 3, "PCM_16": 2, "PCM_S8": 1, "PCM_U8": 1}

FLAC_MAX_CHANNELS = 8
#: RIFF sizes are 32-bit: a WAV file's data must stay below 4 GiB (minus room for the header).
#: So are AU's, in a file (a stream's header says "unknown length" instead).
MAX_DATA_BYTES = 2**32 - 2**16


def file_format(path: str, fmt: Optional[str]) -> str:
    """``fmt``, or the format that ``path``'s suffix names.

    Raises
    ------
    UsageError
        If ``fmt`` is None and the suffix names none of `FORMATS` (``-`` has none).
    """
    if fmt is not None:
        return fmt
    if path == STDOUT:
        raise UsageError("argument --format: give the format to write to stdout ('-'): "
                         "--format au streams through a pipe; wav and flac need stdout to be a file")
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UsageError(
            f"argument --format: cannot tell the format from {path!r}: "
            f"name the file *.wav, *.flac or *.au, or give --format {{{','.join(FORMATS)}}}"
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


def max_frames(fmt: str, file_subtype: str, channels: int, streaming: bool = False) -> Optional[int]:
    """The most frames a file of this format can hold (None: no practical limit).

    ``streaming``: written to a pipe, where an AU header gives no length, so sets no limit.
    """
    if fmt == "flac" or (fmt == "au" and streaming):
        return None
    return MAX_DATA_BYTES // (_SAMPLE_BYTES[file_subtype] * channels)


class AudioFile(Protocol):
    """What the command line uses of an open ``soundfile.SoundFile`` (soundfile publishes no types)."""

    def write(self, data: np.ndarray) -> None:
        """Append ``(frames, channels)`` samples."""

    def flush(self) -> None:
        """Write out what is buffered, header included: the file is readable as it stands."""

    def close(self) -> None:
        """Complete the header and close the file."""


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


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the output goes, checked (and for a stream opened) before any recording starts.

    Attributes
    ----------
    path : str
        OUT as given (``-``: standard output), for messages.
    fd : int or None
        The open descriptor to write to (stdout, a FIFO), or None: the file
        at ``path`` is created when the recording starts.
    streaming : bool
        Whether ``fd`` is a pipe or socket, which cannot seek: only
        `STREAM_FORMATS` can be written there.
    """

    path: str
    fd: Optional[int]
    streaming: bool

    @property
    def name(self) -> str:
        """How error messages name it: ``stdout`` or the path, quoted."""
        return "stdout" if self.path == STDOUT else repr(self.path)

    @property
    def label(self) -> str:
        """How the notices and the summary name it: ``stdout`` or the path."""
        return "stdout" if self.path == STDOUT else self.path

    def reader_gone(self) -> bool:
        """Whether this is a pipe whose reading end was closed (writing to it fails with EPIPE)."""
        if self.fd is None or not self.streaming:
            return False
        poller = select.poll()
        poller.register(self.fd, 0)  # POLLERR is reported whatever is asked for
        return any(events & select.POLLERR for _, events in poller.poll(0))

    def close(self) -> None:
        """Close a FIFO's descriptor (stdout stays open)."""
        if self.fd is not None and self.path != STDOUT:
            os.close(self.fd)


def open_target(path: str, fmt: str) -> Target:
    """Check that ``fmt`` audio can be written to ``path`` now, not after the recording started.

    ``-`` is standard output; a FIFO is opened at once, without waiting,
    and written like a pipe on stdout. An existing regular file is left
    as it is (replaced only once the recording starts).

    Raises
    ------
    CliError
        If it cannot be written, with the operating system's reason (libsndfile
        would only say "System error"), or if it is a pipe and ``fmt`` needs
        a seekable file, or a terminal, a device or a directory.
    """
    if path == STDOUT:
        fd = STDOUT_FD  # not sys.stdout, which is None when the descriptor is closed
        try:
            mode = os.fstat(fd).st_mode
        except OSError as error:
            raise CliError(f"cannot write stdout: {error.strerror or error} (was it closed?)") from None
        if os.isatty(fd):
            raise CliError("stdout is a terminal: redirect it (`> take.au`, `| sox -t au - ...`) or name a file")
        return _streamable(Target(path, fd, _is_pipe(mode)), fmt)
    try:
        found: Optional[int] = os.stat(path).st_mode
    except OSError:
        found = None  # not there (yet): creating it below says why it cannot be
    if found is not None and stat.S_ISFIFO(found):
        _streamable(Target(path, None, True), fmt)  # refuse before opening: nothing waits for us
        try:
            # Non-blocking: with no reader on the other end, open() would wait for one forever.
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise CliError(f"cannot write {path!r}: " + (
                "a FIFO with no reader; start the reader first" if error.errno == errno.ENXIO
                else error.strerror or str(error))) from None
        os.set_blocking(fd, True)  # writes wait for the reader, as on any pipe
        return Target(path, fd, True)
    if found is not None and not stat.S_ISREG(found) and not stat.S_ISDIR(found):
        raise CliError(f"cannot write {path!r}: not a regular file (a device or socket); "
                       f"name a file, or `-` for stdout")
    existed = os.path.lexists(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
    except OSError as error:
        raise CliError(f"cannot write {path!r}: {error.strerror or error}") from None
    if not existed:
        os.unlink(path)
    return Target(path, None, False)


def _is_pipe(mode: int) -> bool:
    """Whether a descriptor of this mode cannot seek (as libsndfile tells a pipe)."""
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _streamable(target: Target, fmt: str) -> Target:
    """``target``, if ``fmt`` can be written to it."""
    if target.streaming and fmt not in STREAM_FORMATS:
        raise CliError(f"cannot write {fmt.upper()} to {target.name}, a pipe: {fmt.upper()} needs a file it can "
                       "seek in to complete its header; use --format au, or name a file")
    return target


def open_output(target: Target, fmt: str, file_subtype: str, channels: int, rate: int) -> AudioFile:
    """Open ``target`` for writing with soundfile, replacing an existing file.

    Returns
    -------
    AudioFile
        A ``soundfile.SoundFile``; closing it leaves ``target.fd`` open (`Target.close`).

    Raises
    ------
    CliError
        If the file cannot be created.
    """
    soundfile = import_soundfile()
    where = target.path if target.fd is None else target.fd
    try:
        file: AudioFile = soundfile.SoundFile(where, "w", samplerate=rate, channels=channels, format=fmt.upper(),
                                              subtype=file_subtype, closefd=False)
    except (OSError, RuntimeError) as error:  # soundfile.LibsndfileError is a RuntimeError
        raise CliError(f"cannot write {target.name}: {error}") from None
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
