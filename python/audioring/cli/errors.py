"""The two ways a command-line run fails, and their exit statuses."""

from __future__ import annotations


class UsageError(Exception):
    """A bad argument, reported as argparse's own errors are (two lines, see `parser`): exit status 2.

    The message names the option, e.g. ``argument --device: ...``. A value
    that names nothing there is (an unknown ``--device``, nothing shared under
    the ``--from`` name) is an argument error too: the fix is in the command line.
    """


class CliError(Exception):
    """A failure while running (file not writable, device failed, ...): exit status 1."""


#: ``record``'s exit status when the file is complete but not lossless: frames were lost (written
#: as silence of their length and listed).
EXIT_LOST = 3
