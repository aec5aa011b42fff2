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
another thread held at the fork would never be released. Once a PortAudio
stream was opened, sounddevice's exit handler is unregistered in the child
(`forget_portaudio_in_forked_children`): ``Pa_Terminate`` there would act on
the parent's streams without their threads (``_sources/portaudio.py`` says
what it did on PulseAudio and JACK).

The PortAudio source registers its own exit hook through
`before_portaudio_exits` (lost JACK streams abandoned before
``Pa_Terminate``); the why of both its hooks stays with the host-API facts
it depends on (``_sources/portaudio.py``).
"""

from __future__ import annotations

import atexit
import os
import weakref
from types import ModuleType
from typing import Callable, Optional, Protocol

from . import _watch


class _Releasable(Protocol):
    def _release_at_exit(self) -> None: ...


#: Recorders on PortAudio devices, released at exit before sounddevice's exit handler runs.
_OPEN_AT_EXIT: weakref.WeakSet[_Releasable] = weakref.WeakSet()
#: The exit hooks registered so far (each once, however often asked for).
_AT_EXIT: set[Callable[[], None]] = set()


def before_portaudio_exits(hook: Callable[[], None]) -> None:
    """Run ``hook`` at exit, before sounddevice's exit handler terminates PortAudio; once, however often asked.

    Call it once sounddevice is imported (a PortAudio stream exists), so
    that the hook is registered after sounddevice's handler and runs before it.
    """
    if hook not in _AT_EXIT:
        atexit.register(hook)
        _AT_EXIT.add(hook)


def release_at_exit(recorder: _Releasable) -> None:
    """Have ``recorder`` release its device at exit, before PortAudio terminates, unless it is closed by then."""
    _OPEN_AT_EXIT.add(recorder)
    before_portaudio_exits(_release_recorders)


def forget_at_exit(recorder: _Releasable) -> None:
    """``recorder`` closed: nothing to release at exit."""
    _OPEN_AT_EXIT.discard(recorder)


def _release_recorders() -> None:
    for recorder in list(_OPEN_AT_EXIT):
        try:
            recorder._release_at_exit()
        except Exception:  # noqa: BLE001 - exiting: nothing to report to
            pass


#: Whether forked children already leave PortAudio alone (registered once per process).
_portaudio_fork_hook_registered = False


def forget_portaudio_in_forked_children(sd: ModuleType) -> None:
    """Make forked children of this process leave PortAudio alone at exit; once, however often asked.

    Unregisters sounddevice's exit handler (which calls ``Pa_Terminate``) in
    each child forked from now on. Call it before the first PortAudio
    stream opens: a child forked earlier has no stream of the parent's.
    """
    global _portaudio_fork_hook_registered
    if _portaudio_fork_hook_registered or not hasattr(os, "register_at_fork"):
        return
    handler: Optional[Callable[[], None]] = getattr(sd, "_exit_handler", None)
    if handler is not None:
        os.register_at_fork(after_in_child=lambda: atexit.unregister(handler))
    _portaudio_fork_hook_registered = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_watch.forget_after_fork)
