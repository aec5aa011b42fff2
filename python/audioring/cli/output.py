"""Where ``record``'s output goes: its format by name, and the target checked before any device opens."""

from __future__ import annotations

import dataclasses
import errno
import os
import select
import stat
from typing import Optional

from .. import _file_formats as file_formats
from .errors import CliError, UsageError

#: The formats ``record`` writes (the native writer's table: ``audioring._file_formats``).
FORMATS = tuple(file_formats.FORMATS)
#: The formats libsndfile writes to a pipe: their header does not hold the length (the others'
#: do, and libsndfile must seek back to complete it).
STREAM_FORMATS = tuple(name for name, info in file_formats.FORMATS.items() if info["streams"])
#: OUT that means standard output.
STDOUT = "-"
#: Standard output's file descriptor.
STDOUT_FD = 1
#: RIFF and AU sizes are 32-bit: such a file's data stays below 4 GiB (minus room for the header).
MAX_DATA_BYTES = int(file_formats.FORMATS["au"]["max_data_bytes"])


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
                         "--format au streams through a pipe; wav and the others need stdout to be a file")
    found = file_formats.format_from_path(path)
    if found is None:
        raise UsageError(
            f"argument --format: cannot tell the format from {path!r}: "
            f"name the file {', '.join('*.' + name for name in FORMATS)}, or give --format {{{','.join(FORMATS)}}}"
        )
    return found


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
