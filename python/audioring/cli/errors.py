"""The two ways a command-line run fails, and their exit statuses."""

from __future__ import annotations


class UsageError(Exception):
    """A bad argument, reported argparse-style with the usage line: exit status 2.

    The message names the option, e.g. ``argument --device: ...``.
    """


class CliError(Exception):
    """A failure while running (file not writable, device failed, ...): exit status 1."""
