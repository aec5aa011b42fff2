"""What audioring does when the process exits or forks, in one place.

At exit (``atexit``): recorders still open on PortAudio devices release them
while PortAudio and every module still work (`release_at_exit`). Left to
their finalizers they would close during interpreter shutdown, after
sounddevice's exit handler has called ``Pa_Terminate``. So the hook is
registered after that handler (sounddevice is imported by the time a
PortAudio recorder exists), and runs before it: ``atexit`` runs handlers
last-in, first-out. Nothing is printed: the process is exiting.

In a forked child (``os.register_at_fork``): the asyncio watchers of the
parent (`_watch`) are forgotten, since their threads did not fork and a lock
another thread held at the fork would never be released.

The PortAudio source keeps its own two hooks next to the host-API facts
they depend on (``_sources/portaudio.py``): lost JACK streams abandoned at
exit, and PortAudio left alone at exit in forked children.
"""

from __future__ import annotations

import atexit
import os
import weakref
from typing import Protocol

from . import _watch


class _Releasable(Protocol):
    def _release_at_exit(self) -> None: ...


#: Recorders on PortAudio devices, released at exit before sounddevice's exit handler runs.
_OPEN_AT_EXIT: weakref.WeakSet[_Releasable] = weakref.WeakSet()
_exit_hook_registered = False


def release_at_exit(recorder: _Releasable) -> None:
    """Have ``recorder`` release its device at exit, before PortAudio terminates, unless it is closed by then."""
    global _exit_hook_registered
    _OPEN_AT_EXIT.add(recorder)
    if not _exit_hook_registered:
        atexit.register(_release_recorders)
        _exit_hook_registered = True


def forget_at_exit(recorder: _Releasable) -> None:
    """``recorder`` closed: nothing to release at exit."""
    _OPEN_AT_EXIT.discard(recorder)


def _release_recorders() -> None:
    for recorder in list(_OPEN_AT_EXIT):
        try:
            recorder._release_at_exit()
        except Exception:  # noqa: BLE001 - exiting: nothing to report to
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_watch.forget_after_fork)
