"""The exceptions of :mod:`audioring.testing`."""

from __future__ import annotations

__all__ = ["AudioServerError", "AudioServerUnavailable"]


class AudioServerError(RuntimeError):
    """An audio server could not be started or used.

    Raised when a server exits, does not answer within its timeout, or a
    signal it plays does not arrive; the message includes the end of the
    server's log where there is one.
    """


class AudioServerUnavailable(AudioServerError):
    """A program or module an audio server needs is not installed.

    :mod:`audioring.testing` never installs anything itself. The message names
    the missing program and the packages to install (Debian/Ubuntu, Fedora,
    Arch), or the pip extra for a missing Python module.

    Attributes
    ----------
    missing : str
        The program (e.g. ``"jackd"``) or Python module (``"jack"``) not found.
    """

    def __init__(self, message: str, missing: str) -> None:
        super().__init__(message)
        self.missing = missing
