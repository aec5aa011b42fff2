"""What the servers share: their client variables in ``os.environ``, cleanup, context management.

A server exports the variables its clients need (:meth:`ServerBase.activate`)
and restores the earlier values when it stops, unless another server has been
activated since. Servers started by this process are stopped at interpreter
exit if the caller never stopped them (an aborted test run).
"""

from __future__ import annotations

import atexit
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Optional, TypeVar

__all__ = ["ServerBase", "forget_at_exit", "stop_at_exit"]

_S = TypeVar("_S", bound="ServerBase")

# Servers started by this process, stopped at exit if a test run is aborted.
_LIVE: set[ServerBase] = set()
_registered = False


def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def stop_at_exit(server: ServerBase) -> None:
    """Stop `server` at interpreter exit unless it has been stopped before."""
    global _registered
    if not _registered:  # registered on first use: importing has no side effect
        atexit.register(_stop_all)
        _registered = True
    _LIVE.add(server)


def forget_at_exit(server: ServerBase) -> None:
    """Leave `server` running at interpreter exit (the command line does)."""
    _LIVE.discard(server)


class ServerBase:
    """Base of :class:`PulseServer` and :class:`JackServer`."""

    env: dict[str, str]
    directory: Optional[Path]
    _saved_env: Optional[dict[str, Optional[str]]] = None

    def start(self: _S) -> _S:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def running(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def activate(self) -> None:
        """Export :attr:`env` into ``os.environ`` (remembering earlier values).

        Clients started from this process then use this server. PortAudio
        reads the variables when it initializes: call
        :func:`~audioring.testing.refresh_portaudio` afterwards. :meth:`stop`
        restores the earlier values, unless another server was activated
        since.
        """
        if self._saved_env is None:
            self._saved_env = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def _forget(self) -> None:
        """After the process is gone: restore the environment, drop the private directory."""
        self._restore_env()
        forget_at_exit(self)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _restore_env(self) -> None:
        saved, self._saved_env = self._saved_env, None
        if not saved:
            return
        # Restore only if this server is still the active one; another server
        # activated since owns the variables now.
        if all(os.environ.get(k) == v for k, v in self.env.items()):
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()
